"""The per-prompt router on a tiny table: a hand-computed neighbour mean, the cost penalty, the artifact round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routers.base import RouteInput
from routers.per_prompt import NeighbourParams, PerPromptRouter, choose_models, cost_penalty_for_budget

KEYS = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
OUTCOMES = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
COSTS = [1.0, 10.0]


class AxisEncoder:
    def encode(self, texts):
        return np.array([[1.0, 0.0] if "first" in t else [0.0, 1.0] for t in texts])


def router(k=2, bandwidth=math.inf, shrinkage=1.0, penalty=0.0, categories=("only",)):
    w = np.zeros((2, len(categories)))
    means = np.tile(OUTCOMES.mean(axis=0), (len(categories), 1))  # [0.5, 0.75]
    return PerPromptRouter(AxisEncoder(), KEYS, OUTCOMES, ["cheap", "dear"], COSTS, w, np.zeros(len(categories)),
                           1.0, means, list(categories), NeighbourParams(k, bandwidth, shrinkage), penalty)


def test_prediction_is_the_shrunk_neighbour_mean():
    pred = router().predict(np.array([[1.0, 0.0]]))
    # neighbours rows 0 and 1 (cos 1 and 0.8): sums [1, 2]; prior [0.5, 0.75] with β = 1
    np.testing.assert_allclose(pred, [[(1 + 0.5) / 3, (2 + 0.75) / 3]])


def test_kernel_weights_fade_with_distance():
    pred = router(bandwidth=0.1, shrinkage=0.0).predict(np.array([[1.0, 0.0]]))
    w1 = math.exp((0.8 - 1.0) / 0.1)
    np.testing.assert_allclose(pred, [[w1 / (1 + w1), 1.0]], rtol=1e-6)


def test_no_shrinkage_and_all_neighbours_is_the_table_mean():
    pred = router(k=4, shrinkage=0.0).predict(np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(pred, [OUTCOMES.mean(axis=0)])


def test_lambda_zero_picks_the_best_prediction_and_a_huge_lambda_the_cheapest():
    r = router()
    [d] = r.route([RouteInput("the first axis")])
    assert d.expert == "dear" and d.scores["dear"] == pytest.approx(2.75 / 3, abs=1e-4)
    r.cost_penalty = 1e6
    assert r.route([RouteInput("the first axis")])[0].expert == "cheap"


def test_equal_predictions_go_to_the_cheaper_model():
    r = router(k=4, shrinkage=0.0)
    r.outcomes = np.ones_like(r.outcomes)
    assert r.route([RouteInput("first")])[0].expert == "cheap"


def test_budget_sets_the_smallest_penalty_that_fits():
    pred = np.array([[0.5, 0.9], [0.5, 0.6], [0.5, 0.55]])  # gains .4, .1, .05 for 9 more cost
    costs = np.array(COSTS)
    assert cost_penalty_for_budget(pred, costs, 10.0) == 0.0
    lam = cost_penalty_for_budget(pred, costs, 4.0)  # one prompt of three may go to "dear"
    assert lam == pytest.approx(0.1 / 9, rel=1e-6)  # just enough to send the .1-gain prompt to "cheap"
    assert choose_models(pred, costs, lam).tolist() == [1, 0, 0]


def test_restrict_to_served_experts_and_aliases():
    r = router()
    assert r.restrict({"dear": "qwen"}, {"qwen", "smol"}) == ["cheap"]
    assert r.experts == {"qwen"}
    assert r.route([RouteInput("first")])[0].expert == "qwen"
    with pytest.raises(ValueError, match="none of the router's models"):
        r.restrict({}, {"other"})


def test_wrong_embedding_width_is_refused():
    with pytest.raises(ValueError, match="wrong encoder"):
        router().predict(np.zeros((1, 3)))
