"""A GLIDER-routed request through the real Serve app: a second app (router.type glider) on the session's Ray,
whose decision equals the one the same router makes in-process, with its top-2 mixture in the `coe` object."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
PROMPT = "Write a Python function that returns the n-th Fibonacci number."


def glider_config(default_config):
    cfg = default_config.model_copy(deep=True)
    cfg.experts = [e for e in cfg.experts if e.moerging is None]  # the routed three; no second MoErging replica
    cfg.router.type = "glider"
    cfg.router.glider.artifact = ROOT / "artifacts" / "glider-router"
    cfg.router.glider.alpha = 4.0
    cfg.router.glider.top_k = 2
    cfg.ray.app_name = "coe-glider"
    cfg.ray.route_prefix = "/glider"
    return cfg


@pytest.fixture(scope="module")
def glider_app(deploy_side, default_config):
    from ray import serve

    cfg = glider_config(default_config)
    url = deploy_side(cfg)
    yield url, cfg
    serve.delete("coe-glider")


def test_glider_decision_through_serve(glider_app):
    from coe.serve.routing import RouterHolder

    url, cfg = glider_app
    expected = RouterHolder(cfg).route_one(PROMPT)
    r = httpx.post(f"{url}/v1/chat/completions", timeout=600, json={
        "model": "coe", "max_tokens": 8, "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 200, r.text
    coe = r.json()["coe"]
    assert coe["expert"] == expected.expert == r.headers["x-coe-expert"] == r.json()["model"]
    assert coe["reason"] == expected.reason and coe["reason"].startswith("glider: alpha=4 ")
    assert coe["weights"] == expected.weights and len(coe["weights"]) == 2
    assert sum(coe["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    health = httpx.get(f"{url}/health").json()["router"]
    assert health["type"] == "glider" and health["glider"]["top_k"] == 2
    assert health["glider"]["instruction_mode"] == "cheap"


@pytest.fixture(scope="module")
def glider_llm_app(deploy_side, default_config):
    """llm instruction mode: SmolLM2 writes each task's instruction, called through its pool's handle."""
    from ray import serve

    cfg = glider_config(default_config)
    cfg.router.glider.instruction_mode = "llm"
    cfg.router.glider.instruction_expert = "smollm2-135m"
    cfg.ray.app_name = "coe-glider-llm"
    cfg.ray.route_prefix = "/glider-llm"
    url = deploy_side(cfg)
    yield url
    serve.delete("coe-glider-llm")


def test_llm_mode_writes_instructions_through_the_writer_pool(glider_llm_app):
    url = glider_llm_app
    body = {"model": "coe", "max_tokens": 4, "messages": [{"role": "user", "content": PROMPT}]}
    for _ in range(2):
        r = httpx.post(f"{url}/v1/chat/completions", timeout=600, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["coe"]["reason"].startswith("glider: alpha=4 ")
    router = httpx.get(f"{url}/health").json()["router"]
    assert router["glider"]["instruction_mode"] == "llm"
    # one instruction written (a failed pool call would cache nothing) and reused for the same prompt
    assert router["glider"]["instruction_cache"] == {"hits": 1, "misses": 1, "size": 1}
