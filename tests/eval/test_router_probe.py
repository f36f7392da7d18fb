"""The chat probe: every expected category is one the committed router can answer, and it scores what it routes."""

from __future__ import annotations

import pytest

from eval import router_probe
from routers.artifacts import load_artifact
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION


def test_every_probe_names_a_category_of_the_committed_router():
    categories = set(load_artifact("artifacts/coe-router", ARTIFACT_KIND, ARTIFACT_VERSION).meta["categories"])
    assert {want for _, want in router_probe.PROBES} <= categories


def test_probe_counts_the_categories_the_router_gives(monkeypatch: pytest.MonkeyPatch):
    class Fixed:
        def route(self, inputs):
            return [type("D", (), {"category": "history"})() for _ in inputs]

    monkeypatch.setattr("coe.serve.routing.build_router", lambda cfg: Fixed())
    out = router_probe.probe("onnx-int8:all-minilm-l6-v2", "artifacts/coe-router")
    assert out["correct"] == sum(want == "history" for _, want in router_probe.PROBES) == 6
    assert out["categories"] == ["history"] * len(router_probe.PROBES)
