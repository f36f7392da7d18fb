"""A MoErging (token-level GLIDER) expert served like any other through the real Serve app and the openai client."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

pytestmark = pytest.mark.slow

PROMPT = "Text: the flutter of a swept wing was measured in a supersonic wind tunnel at several Mach numbers\nTitle:"


@pytest.fixture(scope="module")
def moerging_expert(default_config) -> str:
    names = [e.name for e in default_config.experts if e.moerging is not None]
    assert names, "configs/default.yaml serves a MoErging expert"
    return names[0]


@pytest.fixture(scope="module")
def client(served):
    return OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0, timeout=300)


def test_routing_trace_comes_back_when_asked(client, moerging_expert):
    r = client.chat.completions.create(model=moerging_expert, messages=[{"role": "user", "content": PROMPT}],
                                       max_tokens=12, extra_body={"coe": {"routing_trace": True}})
    assert r.model == moerging_expert and r.choices[0].message.content.strip()
    trace = r.model_extra["coe"]["routing_trace"]
    assert len(trace["experts"]) == len(trace["global_scores"]) >= 2
    assert abs(sum(trace["mean"]) - 1.0) < 1e-2
    assert trace["modules"] and all(len(w) == len(trace["experts"]) for w in trace["modules"].values())
    best = trace["experts"][max(range(len(trace["experts"])), key=lambda i: trace["global_scores"][i])]
    assert "cranfield" in best  # a wing-flutter text is closest to the aeronautics expert's instruction
    plain = client.chat.completions.create(model=moerging_expert, messages=[{"role": "user", "content": PROMPT}],
                                           max_tokens=12)
    assert "routing_trace" not in plain.model_extra["coe"]
    assert plain.choices[0].message.content == r.choices[0].message.content  # greedy either way


def test_streaming_carries_the_trace_on_the_final_chunk(client, moerging_expert):
    chunks = list(client.chat.completions.create(
        model=moerging_expert, messages=[{"role": "user", "content": PROMPT}], max_tokens=8, stream=True,
        extra_body={"coe": {"routing_trace": True}}))
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and "routing_trace" in final[0].model_extra["coe"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()


@pytest.mark.parametrize("coe", [{"routing_trace": "yes please"}, {"unknown_option": True}])
def test_bad_coe_options_are_a_400_naming_the_field(served, moerging_expert, coe):
    r = httpx.post(f"{served}/v1/chat/completions", timeout=60, json={
        "model": moerging_expert, "messages": [{"role": "user", "content": "hi"}], "coe": coe})
    assert r.status_code == 400
    assert "coe" in r.json()["error"]["message"]
