"""LoRA experts through the real Serve app: one pool holds SmolLM2 once and three adapters (one ComPEFT-compressed)
in two device slots; direct and routed requests reach them, answers match peft with that adapter alone."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SMOL = "registry:smollm2-135m-instruct"
EXPERTS = ROOT / "artifacts" / "lora-experts"
PROMPT = "Text: the flutter of a swept wing was measured in a supersonic wind tunnel at several Mach numbers\nTitle:"
CODE = "Write a Python function that reverses a list"


def lora_config(artifact: Path, compressed: Path):
    from coe.config import parse_config

    return parse_config({
        "experts": [
            {"name": "smol", "model": SMOL, "pool": "lora", "dtype": "float32", "default_max_tokens": 12},
            {"name": "cisi-lora", "base": "smol", "adapter": str(EXPERTS / "cisi-title")},
            {"name": "cranfield-lora", "base": "smol", "adapter": str(EXPERTS / "cranfield-title"),
             "description": "aeronautics titles"},
            {"name": "scifact-lora", "base": "smol", "adapter": str(compressed)},
        ],
        "router": {"artifact": str(artifact), "general_expert": "smol", "min_confidence": 0.2,
                   "expert_aliases": {"smollm2-135m": "smol", "qwen2.5-coder-0.5b": "cisi-lora",
                                      "gemma3-270m": "cranfield-lora"},
                   "category_map": {"computer_science": "cranfield-lora"}},
        "memory": {"adapters": {"max_loras": 2, "max_cpu_loras": 1}},
        "ray": {"app_name": "lora", "route_prefix": "/lora"},
    }, "<lora test config>")


@pytest.fixture(scope="module")
def lora_app(deploy_side, tmp_path_factory):
    from ray import serve

    from experts.lora.artifact import compress_expert

    tmp = tmp_path_factory.mktemp("lora")
    shutil.copytree(ROOT / "artifacts" / "coe-router", tmp / "coe-router")
    compress_expert(EXPERTS / "scifact-title", tmp / "scifact-compeft", density=0.5)
    url = deploy_side(lora_config(tmp / "coe-router", tmp / "scifact-compeft"))
    yield url
    serve.delete("lora")


def chat(url: str, model: str, prompt: str = PROMPT, **extra) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=600, json={
        "model": model, "max_tokens": 12, "messages": [{"role": "user", "content": prompt}], **extra})


def peft_alone(adapter: Path, prompt: str, tokens: int = 12) -> str:
    """Greedy text of SmolLM2 + this adapter under peft (the reference), chat template as the backend renders it."""
    from peft_reference import peft_alone as reference

    from coe.serve.backends import resolve_model_ref

    return reference(resolve_model_ref(SMOL), adapter, prompt, tokens)


def test_a_lora_expert_answers_like_peft_with_its_adapter_alone(lora_app):
    r = chat(lora_app, "cranfield-lora")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "cranfield-lora"
    assert r.json()["choices"][0]["message"]["content"] == peft_alone(EXPERTS / "cranfield-title", PROMPT)


def test_concurrent_requests_to_several_adapters_each_get_their_answer_alone(lora_app):
    models = ["cisi-lora", "cranfield-lora", "scifact-lora", "smol"]
    alone = {m: chat(lora_app, m).json()["choices"][0]["message"]["content"] for m in models}
    assert len(set(alone.values())) > 1  # the adapters do change the answer

    async def together():
        async with httpx.AsyncClient(timeout=600) as client:
            return await asyncio.gather(*(client.post(f"{lora_app}/v1/chat/completions", json={
                "model": m, "max_tokens": 12, "messages": [{"role": "user", "content": PROMPT}]}) for m in models * 2))

    for m, r in zip(models * 2, asyncio.run(together()), strict=True):
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == alone[m], m


def test_models_list_the_base_and_experts_show_adapter_tiers(lora_app):
    models = {m["id"]: m for m in httpx.get(f"{lora_app}/v1/models", timeout=30).json()["data"]}
    assert models["cisi-lora"]["coe"]["base"] == "smol" and models["cisi-lora"]["coe"]["kind"] == "lora-expert"
    assert models["smol"]["coe"]["kind"] == "expert"
    chat(lora_app, "scifact-lora")
    experts = {e["name"]: e for e in httpx.get(f"{lora_app}/v1/experts", timeout=30).json()["data"]}
    loras = [experts[n] for n in ("cisi-lora", "cranfield-lora", "scifact-lora")]
    assert all(e["pool"] == "lora" and e["base"] == "smol" for e in loras)
    assert sum(e["tier"] == "device" for e in loras) <= 2  # two slots for three adapters
    text = httpx.get(f"{lora_app}/metrics", timeout=30).text
    assert 'tier="adapter:device"' in text and 'kind="adapter:' in text


def test_the_router_reaches_a_lora_expert(lora_app):
    r = chat(lora_app, "coe", CODE)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "cranfield-lora", r.json()["coe"]


def test_an_unknown_adapter_is_404(lora_app):
    r = chat(lora_app, "nowhere-lora")
    assert r.status_code == 404
    assert "nowhere-lora" in r.json()["error"]["message"]


def stream_deltas(url: str, model: str, prompt: str = PROMPT, tokens: int = 12) -> tuple[list[str], dict]:
    """The content deltas of a streamed chat completion and its last data event (finish_reason)."""
    import json

    deltas, last = [], {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=600, json={
            "model": model, "max_tokens": tokens, "stream": True,
            "messages": [{"role": "user", "content": prompt}]}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            choice = event["choices"][0] if event.get("choices") else {}
            if choice.get("delta", {}).get("content"):
                deltas.append(choice["delta"]["content"])
            if choice.get("finish_reason"):
                last = choice
    return deltas, last


@pytest.mark.parametrize("model", ["cranfield-lora", "smol"])
def test_streaming_a_lora_expert_gives_incremental_chunks_and_the_same_text(lora_app, model):
    whole = chat(lora_app, model).json()["choices"][0]["message"]["content"]
    deltas, last = stream_deltas(lora_app, model)
    assert len(deltas) > 1, deltas  # token by token, not the completion in one delta
    assert "".join(deltas) == whole
    assert last["finish_reason"] in ("stop", "length")
