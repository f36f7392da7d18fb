"""The category→expert map as a small mixed-integer program (CoE paper, arXiv 2412.01868, §3.2).

maximise   Σ_c w_c · Σ_m s(c, m) · x_cm
subject to Σ_m x_cm = 1                       every category gets exactly one expert
           Σ_c w_c · Σ_m p_m · x_cm ≤ B       average active parameters under the category mix w
           x_cm ≤ y_m,  Σ_m y_m ≤ L           optional: at most L distinct experts kept loaded
           x_cm = 1 for (c, m) in F            optional: categories whose expert the operator fixed
           x, y ∈ {0, 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

# Among maps with equal score prefer the cheaper one, so ties resolve the same way on every run.
TIE_BREAK = 1e-6  # far below one question of accuracy, far above the solver tolerance


class InfeasibleBudgetError(ValueError):
    """No map meets the budget; the message says the minimum feasible budget."""


@dataclass(frozen=True)
class MapSolution:
    category_map: dict[str, str]
    expected_score: float  # Σ_c w_c s(c, map(c)) with w normalised to sum 1
    avg_params: float  # Σ_c w_c p_map(c)
    experts_used: tuple[str, ...]


def min_feasible_budget(params: np.ndarray, weights: np.ndarray | None = None,
                        fixed_cost: Mapping[int, float] | None = None) -> float:
    """The cheapest map sends every free category to the cheapest expert and fixed ones to their expert."""
    cheapest = float(np.min(params))
    if not fixed_cost or weights is None:
        return cheapest
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return float(sum(w[c] * fixed_cost.get(c, cheapest) for c in range(len(w))))


def _fixed_indices(fixed: Mapping[str, str], categories: Sequence[str], experts: Sequence[str]) -> dict[int, int]:
    unknown = {c: e for c, e in fixed.items() if c not in categories or e not in experts}
    if unknown:
        raise ValueError(f"fixed map entries name unknown categories or experts: {unknown}")
    return {list(categories).index(c): list(experts).index(e) for c, e in fixed.items()}


def _constraints(w: np.ndarray, p: np.ndarray, budget: float | None, limit: int | None) -> list[LinearConstraint]:
    n_c, n_m = len(w), len(p)
    n_x = n_c * n_m
    n_vars = n_x + (n_m if limit is not None else 0)
    one_each = np.zeros((n_c, n_vars))
    for c in range(n_c):
        one_each[c, c * n_m : (c + 1) * n_m] = 1.0
    cons = [LinearConstraint(one_each, 1.0, 1.0)]
    if budget is not None:
        cost = np.zeros(n_vars)
        cost[:n_x] = np.outer(w, p).ravel()
        cons.append(LinearConstraint(cost[None, :], -np.inf, budget))
    if limit is not None:
        link = np.zeros((n_x, n_vars))  # x_cm - y_m ≤ 0
        for c in range(n_c):
            for m in range(n_m):
                link[c * n_m + m, c * n_m + m] = 1.0
                link[c * n_m + m, n_x + m] = -1.0
        count = np.zeros(n_vars)
        count[n_x:] = 1.0
        cons += [LinearConstraint(link, -np.inf, 0.0), LinearConstraint(count[None, :], -np.inf, limit)]
    return cons


def solve_category_map(
    scores: np.ndarray,
    weights: np.ndarray,
    params: np.ndarray,
    categories: Sequence[str],
    experts: Sequence[str],
    budget: float | None = None,
    max_experts: int | None = None,
    fixed: Mapping[str, str] | None = None,
) -> MapSolution:
    """Best category→expert map under an average-active-parameter budget (None: no budget).

    `scores` is [categories, experts] (e.g. k-shot accuracy), `weights` the category mix (normalised here),
    `params` the active parameters of each expert in the unit of `budget` (billions in coe); `fixed` pins
    categories to experts (their traffic still counts against the budget).
    """
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(params, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if s.shape != (len(categories), len(experts)) or w.shape != (len(categories),) or p.shape != (len(experts),):
        raise ValueError(f"shapes disagree: scores {s.shape}, weights {w.shape}, params {p.shape}")
    if w.sum() <= 0 or (w < 0).any():
        raise ValueError("category weights must be non-negative with a positive sum")
    if max_experts is not None and max_experts < 1:
        raise ValueError(f"max_experts must be >= 1, got {max_experts}")
    w = w / w.sum()
    pins = _fixed_indices(fixed or {}, categories, experts)
    floor = min_feasible_budget(p, w, {c: float(p[m]) for c, m in pins.items()})
    if budget is not None and budget < floor - 1e-12:
        cheapest = experts[int(np.argmin(p))]
        pinned = " and the fixed categories on their experts" if pins else ""
        raise InfeasibleBudgetError(
            f"budget {budget:g} is infeasible: the minimum feasible budget is {floor:g} "
            f"(every category on the cheapest expert, {cheapest}{pinned})"
        )
    n_c, n_m = s.shape
    n_y = n_m if max_experts is not None else 0
    c_vec = np.concatenate([(w[:, None] * (TIE_BREAK * p[None, :] - s)).ravel(), np.zeros(n_y)])
    lower = np.zeros(len(c_vec))
    for c, m in pins.items():
        lower[c * n_m + m] = 1.0
    res = milp(
        c_vec,
        constraints=_constraints(w, p, budget, max_experts),
        integrality=np.ones(len(c_vec)),
        bounds=Bounds(lower, 1),
        options={"mip_rel_gap": 1e-9},
    )
    if res.x is None:
        raise InfeasibleBudgetError(f"no category map found: {res.message}")
    x = np.round(res.x[: n_c * n_m]).reshape(n_c, n_m)
    choice = x.argmax(axis=1)
    category_map = {cat: experts[m] for cat, m in zip(categories, choice, strict=True)}
    used = tuple(e for i, e in enumerate(experts) if (choice == i).any())
    return MapSolution(
        category_map,
        float((w * s[np.arange(n_c), choice]).sum()),
        float((w * p[choice]).sum()),
        used,
    )
