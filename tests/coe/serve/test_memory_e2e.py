"""Tiered memory through the real Serve app: three real experts in one pool whose device budget cannot hold
them all; alternating routed requests swap them, answers stay the same, and the metrics show the swaps."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow

DEVICE_BYTES = 1_300_000_000  # Qwen (1.27 GB) alone, or SmolLM2 + Gemma: never all three
HOST_BYTES = 1_900_000_000  # not all three either: the disk tier is used too


@pytest.fixture(scope="module")
def tiered(deploy_side, default_config):
    from ray import serve

    cfg = default_config.model_copy(deep=True)
    cfg.experts = [e for e in cfg.experts if e.moerging is None]  # the three the budgets below are sized for
    for e in cfg.experts:
        e.pool = "shared"
    cfg.memory.device_bytes = DEVICE_BYTES
    cfg.memory.host_bytes = HOST_BYTES
    cfg.ray.app_name = "coe-tiered"
    cfg.ray.route_prefix = "/tiered"
    url = deploy_side(cfg)
    yield url
    serve.delete("coe-tiered")


def chat(url: str, model: str, prompt: str) -> str:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=600, json={
        "model": model, "max_tokens": 12, "messages": [{"role": "user", "content": prompt}]})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == model
    return r.json()["choices"][0]["message"]["content"]


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_alternating_experts_swap_and_answer_the_same(tiered):
    prompts = {"qwen2.5-coder-0.5b": "Write a Python function that reverses a list",
               "smollm2-135m": "Say hello.", "gemma3-270m": "Name a river in France."}
    first = {m: chat(tiered, m, p) for m, p in prompts.items()}
    assert "def " in first["qwen2.5-coder-0.5b"] or "```" in first["qwen2.5-coder-0.5b"]
    for model in ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m", "qwen2.5-coder-0.5b"]:
        assert chat(tiered, model, prompts[model]) == first[model]
    experts = httpx.get(f"{tiered}/v1/experts").json()["data"]
    assert {e["name"] for e in experts} == set(prompts)
    resident = [e for e in experts if e["tier"] == "device"]
    assert sum(e["bytes"] for e in resident) <= DEVICE_BYTES, experts
    text = httpx.get(f"{tiered}/metrics").text
    assert metric(text, "coe_memory_evictions_total", pool="shared", tier="device") >= 3
    assert metric(text, "coe_memory_moves_total", pool="shared") >= 6
    assert metric(text, "coe_memory_resident_bytes", pool="shared", tier="device") <= DEVICE_BYTES


def test_admin_offload_and_load(tiered):
    r = httpx.post(f"{tiered}/v1/experts/smollm2-135m/offload?tier=disk", timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "disk"
    r = httpx.post(f"{tiered}/v1/experts/smollm2-135m/load", timeout=300)
    assert r.status_code == 200 and r.json()["tier"] == "device"
    assert httpx.post(f"{tiered}/v1/experts/nope/load").status_code == 404
    assert httpx.post(f"{tiered}/v1/experts/smollm2-135m/offload?tier=device").status_code == 400
