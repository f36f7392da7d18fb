"""APGR / CPT on a hand-made two-model table whose answers are worked out by hand (RouteLLM's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.routellm_metrics import routellm_metrics, threshold_curve

# weak right on prompts 0-2 (0.3), strong on 0-7 (0.8): prompts 3-7 are the ones worth the strong model
WEAK = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
STRONG = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=float)


def test_oracle_router():
    # thresholds 0 ×5, 0.5, 1 ×4, then > 1: points (1, .8) ×5, (.5, .8) ×5, (0, .3)
    m = routellm_metrics(STRONG - WEAK, STRONG, WEAK)
    assert m.apgr == pytest.approx(0.75)  # AUC .275 + .4 = .675; (.675 - .3) / (.8 - .3)
    assert m.cpt50 == pytest.approx(0.25)  # .55 is reached halfway from (0, .3) to (.5, .8)
    assert m.cpt80 == pytest.approx(0.4)


def test_inverted_router():
    m = routellm_metrics(-(STRONG - WEAK), STRONG, WEAK)
    assert m.apgr == pytest.approx(0.25)  # AUC .15 + .275 = .425
    assert m.cpt50 == pytest.approx(0.75)


def test_random_router_is_near_half():
    rng = np.random.default_rng(0)
    weak = (rng.random(20000) < 0.6).astype(float)
    strong = np.maximum(weak, rng.random(20000) < 0.5).astype(float)
    m = routellm_metrics(rng.random(20000), strong, weak)
    assert m.apgr == pytest.approx(0.5, abs=0.02)
    assert m.cpt50 == pytest.approx(0.5, abs=0.03)


def test_thresholds_are_pandas_qcut_bins():
    pd = pytest.importorskip("pandas")
    scores = np.random.default_rng(1).random(101)
    _, bins = pd.qcut(scores, 10, retbins=True)
    points = threshold_curve(scores, np.ones(101), np.zeros(101))
    shares = [float((scores >= t).mean()) for t in bins[:-1]] + [float((scores > bins[-1]).mean())]
    assert [p[0] for p in points] == pytest.approx(shares)


def test_equal_models_are_refused():
    with pytest.raises(ValueError, match="undefined"):
        routellm_metrics(np.arange(3.0), np.ones(3), np.ones(3))
