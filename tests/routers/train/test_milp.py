"""The category→expert MILP on hand-made tables with known optima."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import write_config

from routers.train.config import load_train_config
from routers.train.milp import InfeasibleBudgetError, solve_category_map

CATS = ["math", "history", "writing"]
EXPERTS = ["qwen", "gemma", "smol"]
SCORES = np.array([[0.9, 0.5, 0.4], [0.3, 0.8, 0.35], [0.5, 0.55, 0.6]])
PARAMS = np.array([0.49, 0.27, 0.135])
WEIGHTS = np.array([5.0, 3.0, 2.0])  # normalised to 0.5, 0.3, 0.2


def solve(budget=None, max_experts=None):
    return solve_category_map(SCORES, WEIGHTS, PARAMS, CATS, EXPERTS, budget, max_experts)


def test_unconstrained_picks_each_categorys_best():
    sol = solve()
    assert sol.category_map == {"math": "qwen", "history": "gemma", "writing": "smol"}
    assert sol.expected_score == pytest.approx(0.81)
    assert sol.avg_params == pytest.approx(0.353)
    assert sol.experts_used == ("qwen", "gemma", "smol")


def test_budget_moves_math_off_the_big_expert():
    # qwen on math alone costs 0.245; the cheapest rest (0.0675) then breaks 0.3, so math must move.
    sol = solve(budget=0.3)
    assert sol.category_map == {"math": "gemma", "history": "gemma", "writing": "smol"}
    assert sol.expected_score == pytest.approx(0.61)
    assert sol.avg_params == pytest.approx(0.243)


def test_expert_limit():
    one = solve(max_experts=1)
    assert one.category_map == {"math": "qwen", "history": "qwen", "writing": "qwen"}
    assert one.expected_score == pytest.approx(0.64)
    two = solve(max_experts=2)
    assert two.category_map == {"math": "qwen", "history": "gemma", "writing": "gemma"}
    assert two.expected_score == pytest.approx(0.80)
    assert two.experts_used == ("qwen", "gemma")


def test_budget_at_the_floor_and_below():
    floor = solve(budget=0.135)
    assert set(floor.category_map.values()) == {"smol"}
    with pytest.raises(InfeasibleBudgetError, match="minimum feasible budget is 0.135 .*smol"):
        solve(budget=0.1)


def test_ties_prefer_the_cheaper_expert():
    sol = solve_category_map(np.array([[0.5, 0.5]]), np.array([1.0]), np.array([0.49, 0.135]), ["c"], ["big", "small"])
    assert sol.category_map == {"c": "small"}


def test_bad_inputs():
    with pytest.raises(ValueError, match="shapes disagree"):
        solve_category_map(SCORES[:2], WEIGHTS, PARAMS, CATS, EXPERTS)
    with pytest.raises(ValueError, match="max_experts"):
        solve(max_experts=0)


def test_fixed_categories_are_kept_and_paid_for():
    # writing pinned to qwen costs 0.098 of the 0.35 budget: math cannot have qwen too (0.3835 in all),
    # so gemma takes math and history: 0.5 * 0.5 + 0.3 * 0.8 + 0.2 * 0.5 = 0.59 at 0.314.
    sol = solve_category_map(SCORES, WEIGHTS, PARAMS, CATS, EXPERTS, 0.35, None, {"writing": "qwen"})
    assert sol.category_map == {"math": "gemma", "history": "gemma", "writing": "qwen"}
    assert sol.expected_score == pytest.approx(0.59)
    assert sol.avg_params == pytest.approx(0.314)
    with pytest.raises(InfeasibleBudgetError, match=r"minimum feasible budget is 0\.206 .*fixed categories"):
        solve_category_map(SCORES, WEIGHTS, PARAMS, CATS, EXPERTS, 0.2, None, {"writing": "qwen"})
    with pytest.raises(ValueError, match="unknown categories or experts: {'poetry': 'qwen'}"):
        solve_category_map(SCORES, WEIGHTS, PARAMS, CATS, EXPERTS, None, None, {"poetry": "qwen"})


def test_training_config_refuses_unknown_fixed_entries(tmp_path):
    path = write_config(tmp_path / "coe.yaml", milp={"fixed": {"math": "nobody", "poetry": "big"}})
    with pytest.raises(ValueError, match=r"milp\.fixed keys that are not categories: \['poetry'\].*"
                                         r"milp\.fixed experts not in experts: \['nobody'\]"):
        load_train_config(path)
