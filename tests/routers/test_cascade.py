"""The cascade answers from the static classifier when it is sure and from the MiniLM one otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from routers.base import RouteInput
from routers.cascade import CascadeRouter
from routers.coe import CoERouter

CATS = ["math", "history", "writing"]
MAP = {"math": "coder", "history": "chat", "writing": "chat"}


class TableEncoder:
    """Embeds each known text as a fixed row and counts what it was asked to embed."""

    def __init__(self, rows: dict[str, list[float]]):
        self.rows = rows
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.rows[t] for t in texts], dtype=np.float32)


def _router(encoder: TableEncoder) -> CoERouter:
    return CoERouter(encoder, np.eye(3) * 10.0, np.zeros(3), CATS, 1.0, MAP, "general", tau_entropy=10.0)


def _cascade(threshold: float = 0.9) -> tuple[CascadeRouter, TableEncoder, TableEncoder]:
    # The static path is sure of "integral" (math) and unsure of "essay"; the full path says "essay" is writing.
    fast = TableEncoder({"integral": [1, 0, 0], "essay": [0.5, 0.45, 0.5]})
    full = TableEncoder({"integral": [0, 1, 0], "essay": [0, 0, 1]})
    return CascadeRouter(_router(fast), _router(full), threshold), fast, full


def test_confident_prompts_never_reach_the_full_encoder():
    router, fast, full = _cascade()
    (d,) = router.route([RouteInput("integral")])
    assert (d.category, d.expert) == ("math", "coder")  # the static answer, not the full path's "history"
    assert fast.calls == [["integral"]] and full.calls == [] and router.last_fast_share == 1.0


def test_unsure_prompts_go_to_the_full_encoder_alone():
    router, fast, full = _cascade()
    decisions = router.route([RouteInput("essay"), RouteInput("integral")])
    assert [d.category for d in decisions] == ["writing", "math"]
    assert full.calls == [["essay"]] and router.last_fast_share == 0.5
    probs, sure = router.probabilities_of(["essay", "integral"])
    assert sure.tolist() == [False, True] and int(np.argmax(probs[0])) == CATS.index("writing")


def test_the_map_is_the_full_routers():
    router, _, _ = _cascade()
    router.full.category_map["math"] = "tutor"  # the full router's map (resolved before it is built) decides
    assert router.category_map["math"] == "tutor" and router.route([RouteInput("integral")])[0].expert == "tutor"
    assert "tutor" in router.experts and set(router.stats()) == {"cascade_fast_share"}


def test_threshold_one_sends_everything_to_the_full_path():
    router, _, full = _cascade(threshold=1.0)
    assert router.route([RouteInput("integral")])[0].category == "history"
    assert full.calls == [["integral"]]


def test_bad_cascades_are_refused_by_name():
    _, fast, full = _cascade()
    with pytest.raises(ValueError, match="min_confidence must be in"):
        CascadeRouter(_router(fast), _router(full), 0.0)
    other = CoERouter(full, np.eye(3), np.zeros(3), ["a", "b", "c"], 1.0, {}, "general", 1.0)
    with pytest.raises(ValueError, match="share their categories"):
        CascadeRouter(_router(fast), other, 0.9)
    with pytest.raises(ValueError, match="each need their encoder"):
        CascadeRouter(_router(fast), CoERouter(None, np.eye(3), np.zeros(3), CATS, 1.0, MAP, "general", 1.0), 0.9)


def test_config_selects_the_cascade_for_coe_only(tmp_path):
    """router.cascade builds the cascade in front of the configured router; with another router type it is refused."""
    from pydantic import ValidationError

    from coe.config import RouterConfig

    rc = RouterConfig(general_expert="g", cascade={"artifact": tmp_path, "min_confidence": 0.8})
    assert rc.cascade is not None and rc.cascade.encoder == "model2vec:all-minilm-l6-v2"
    with pytest.raises(ValidationError, match="router.cascade works with router.type coe only"):
        RouterConfig(general_expert="g", type="glider", cascade={"artifact": tmp_path, "min_confidence": 0.8})
