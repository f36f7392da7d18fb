"""`coe bench routing`: router variants per (encoder, artifact) without touching the loaded config, and the
gateway-overhead breakdown from one response's Server-Timing header."""

from pathlib import Path

import pytest

from coe.config import load_config
from eval.bench_routing import breakdown, run_router_only, with_router

ROOT = Path(__file__).resolve().parents[2]


def test_with_router_copies_the_config():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    variant = with_router(cfg, "registry:all-minilm-l6-v2", "/tmp/old-router")
    assert variant.router.encoder == "registry:all-minilm-l6-v2" and variant.router.artifact == Path("/tmp/old-router")
    assert cfg.router.encoder == "onnx-int8:all-minilm-l6-v2" and cfg.router.artifact == Path("artifacts/coe-router")
    assert with_router(cfg, "onnx:all-minilm-l6-v2", None).router.artifact == cfg.router.artifact


def test_artifacts_must_pair_with_encoders():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    with pytest.raises(ValueError, match="--artifact given 1 times for 2 --encoder values"):
        run_router_only(cfg, ["onnx:all-minilm-l6-v2", "registry:all-minilm-l6-v2"], ["/tmp/a"], [1])


def test_breakdown_adds_proxy_and_the_handle_calls_own_cost():
    parts = breakdown("parse;dur=2.00, route;dur=10.00, prepare;dur=0.10, expert;dur=30.00, build;dur=0.40, "
                      "app;dur=43.00", routed_s=0.050, direct_s=0.025)
    assert parts["route"] == pytest.approx(0.010)
    assert parts["proxy"] == pytest.approx(0.007)  # 50 ms round trip, 43 ms inside the gateway app
    assert parts["expert_minus_direct"] == pytest.approx(0.005)


def test_no_header_no_breakdown():
    assert breakdown("", 0.05, 0.02) == {}
