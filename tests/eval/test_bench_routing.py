"""`coe bench routing` options: a router variant per (encoder, artifact) without touching the loaded config."""

from pathlib import Path

import pytest

from coe.config import load_config
from eval.bench_routing import run_router_only, with_router

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
