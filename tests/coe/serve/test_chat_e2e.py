"""The routed chat path end to end: real Ray Serve, real experts, real HTTP, the official openai client."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

pytestmark = pytest.mark.slow

PROMPTS = {
    "code": "Write a Python function that reverses a list",
    "science": "What is the derivative of x squared with respect to x?",
    "small talk": "Hi there! How are you doing today?",
}


@pytest.fixture(scope="module")
def client(served):
    return OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0, timeout=300)


def coe_field(resp) -> dict:
    return resp.model_extra["coe"]


def test_models_lists_router_and_every_expert(client, default_config):
    ids = {m.id for m in client.models.list().data}
    experts = default_config.retrieval.experts
    retrieval = {"coe-retriever", "coe-retriever/base", *(f"coe-retriever/{e}" for e in experts)}
    assert ids == {"coe", *default_config.expert_names} | retrieval


def test_routed_prompts_reach_several_experts_and_answer(client, default_config):
    experts = {}
    for kind, prompt in PROMPTS.items():
        r = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": prompt}],
                                           max_tokens=48)
        decision = coe_field(r)
        assert r.model == decision["expert"] in default_config.expert_names
        assert decision["reason"]
        assert 0.0 <= decision["confidence"] <= 1.0
        assert r.choices[0].message.content.strip(), kind
        assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
        experts[kind] = r.model
    assert len(set(experts.values())) >= 2, experts
    assert experts["code"] == "qwen2.5-coder-0.5b"


def test_code_answer_is_real_code(client):
    r = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": PROMPTS["code"]}],
                                       max_tokens=64)
    assert "def " in r.choices[0].message.content


def test_streaming_matches_non_streaming(client):
    messages = [{"role": "user", "content": PROMPTS["code"]}]
    full = client.chat.completions.create(model="coe", messages=messages, max_tokens=24)
    chunks = list(client.chat.completions.create(model="coe", messages=messages, max_tokens=24, stream=True))
    assert chunks[0].model_extra["coe"]["expert"] == full.model
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1
    assert text == full.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_direct_expert_call_and_stop(client):
    r = client.chat.completions.create(model="gemma3-270m", max_tokens=16,
                                       messages=[{"role": "user", "content": "Name three rivers in Europe."}])
    assert r.model == "gemma3-270m"
    assert coe_field(r)["reason"] == "direct"
    r = client.chat.completions.create(model="smollm2-135m", max_tokens=40, stop=["e"],
                                       messages=[{"role": "user", "content": "Say hello to everyone."}])
    assert "e" not in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"


def test_headers_carry_the_decision(served):
    r = httpx.post(f"{served}/v1/chat/completions", timeout=300, json={
        "model": "coe", "max_tokens": 4, "messages": [{"role": "user", "content": PROMPTS["code"]}]})
    assert r.status_code == 200
    assert r.headers["x-coe-expert"] == r.json()["model"]
    assert "x-coe-category" in r.headers
    assert float(r.headers["x-coe-route-ms"]) >= 0


def test_responses_say_where_their_time_went_and_concurrent_streams_stay_whole(served):
    """Server-Timing on plain and streamed answers; streams routed at the same moment (the router thread
    batches them) each get their own expert's whole answer, the same as asked one at a time."""
    import concurrent.futures

    from coe.api.timing import parse_server_timing

    body = {"model": "coe", "max_tokens": 4, "messages": [{"role": "user", "content": PROMPTS["code"]}]}
    r = httpx.post(f"{served}/v1/chat/completions", timeout=300, json=body)
    phases = parse_server_timing(r.headers["server-timing"])
    assert {"parse", "route", "prepare", "expert", "build", "app"} <= set(phases)
    assert phases["app"] >= phases["route"] + phases["expert"]
    assert phases["route"] >= float(r.headers["x-coe-route-ms"]) - 0.01

    def stream(prompt: str) -> tuple[str, str, str, dict[str, float]]:
        ask = body | {"stream": True, "max_tokens": 12, "messages": [{"role": "user", "content": prompt}]}
        with httpx.stream("POST", f"{served}/v1/chat/completions", json=ask, timeout=300) as resp:
            timing = parse_server_timing(resp.headers["server-timing"])
            events = [line.removeprefix("data: ") for line in resp.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        return chunks[0]["coe"]["expert"], resp.headers["x-coe-expert"], text, timing

    prompts = list(PROMPTS.values())
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(stream, prompts))
    alone = [stream(p) for p in prompts]
    for (expert, header, text, timing), (expert1, _, text1, _) in zip(together, alone, strict=True):
        assert expert == header == expert1
        assert text == text1  # greedy decoding: the same answer whether routed alone or in a batch
        assert {"route", "expert", "app"} <= set(timing)


def test_metrics_count_routing_and_tokens(served, client):
    routed = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=4)
    direct = client.chat.completions.create(model="smollm2-135m", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=2)
    text = httpx.get(f"{served}/metrics").text
    assert "coe_routing_decisions_total{" in text
    # the label is the decision's kind (RouteDecision.kind), not parsed from its reason
    from prometheus_client.parser import text_string_to_metric_families

    decisions = [s.labels for f in text_string_to_metric_families(text) if f.name == "coe_routing_decisions"
                 for s in f.samples if s.name == "coe_routing_decisions_total"]
    assert {"expert": "smollm2-135m", "category": "", "kind": "direct"} in decisions
    kind = "fallback" if routed.model_extra["coe"]["reason"].startswith("fallback") else "routed"
    assert {"expert": routed.model, "category": routed.model_extra["coe"]["category"] or "", "kind": kind} in decisions
    assert direct.model == "smollm2-135m"
    assert "coe_request_latency_seconds_bucket{" in text
    assert 'coe_tokens_total{expert=' in text
    assert httpx.get(f"{served}/health").json()["status"] == "ok"


BAD = [
    ("malformed json", b'{"model": "coe", "messages": [', 400, "not valid JSON"),
    ("missing messages", {"model": "coe"}, 400, "messages"),
    ("empty messages", {"model": "coe", "messages": []}, 400, "messages"),
    ("unknown model", {"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}, 404, "gpt-17"),
    ("wrong type", {"model": "coe", "messages": [{"role": "user", "content": 5}]}, 400, "content"),
    ("max_tokens zero", {"model": "coe", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
     400, "max_tokens"),
    ("max_tokens over limit", {"model": "smollm2-135m", "max_tokens": 100000,
                               "messages": [{"role": "user", "content": "x"}]}, 400, "above the limit"),
    ("oversize body", {"model": "coe", "messages": [{"role": "user", "content": "x" * 1_200_000}]},
     413, "limit"),
]


@pytest.mark.parametrize("name,body,status,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_openai_error_and_server_keeps_working(served, name, body, status, needle):
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) \
        else {"json": body}
    r = httpx.post(f"{served}/v1/chat/completions", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    ok = httpx.post(f"{served}/v1/chat/completions", timeout=300, json={
        "model": "smollm2-135m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200
