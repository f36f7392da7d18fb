"""CoE two-stage router learned from an outcome table: classifier on the prompts' categories, the category→model
map by the MILP on per-category mean outcomes under a cost budget, entropy fallback to a general model.

The artifact is an ordinary `coe-router` artifact (plus the category means), so `coe serve` loads what was
evaluated; other budgets reuse its classifier with a refitted map (`fit_outcome_map`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routers.artifacts import save_artifact
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION, CoERouter, entropy
from routers.train.fallback import choose_tau
from routers.train.milp import solve_category_map
from routers.train.outcome_classifier import OutcomeClassifier, category_means
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_table import OutcomeTable, table_names

TAU_RULE = ("maximises the mean out-of-fold outcome when prompts with H > τ go to the general model, "
            "among τ that beat no fallback by fallback_min_z standard errors")


@dataclass(frozen=True)
class OutcomeMap:
    """The map, general model and τ chosen for one budget (None: no budget)."""

    budget: float | None
    category_map: dict[str, str]
    general_model: str
    tau: float
    train_accuracy: float  # expected outcome of the map under the training category mix
    train_avg_cost: float
    oof_fallback_rate: float
    map_shrinkage: float = 0.0  # pseudo-counts toward the pooled means, chosen on the inner folds


def general_model(table: OutcomeTable, budget: float | None) -> str:
    """The best single model (mean outcome) among those within the budget; the cheapest when none is."""
    means, costs = table.scores.mean(axis=0), table.costs
    ok = costs <= budget + 1e-9 if budget is not None else np.ones(len(costs), dtype=bool)
    if not ok.any():
        return table.model_names[int(np.argmin(costs))]
    best = max(np.flatnonzero(ok), key=lambda m: (means[m], -costs[m]))
    return table.model_names[int(best)]


def shrunk_means(scores: np.ndarray, groups: np.ndarray, k: int, m: float) -> np.ndarray:
    """[K, M] per-category means pulled toward the pooled means by m pseudo-prompts; a category without rows gets
    the pooled means (as category_means gives it), whatever m is."""
    counts = np.bincount(groups, minlength=k).astype(np.float64)[:, None]
    weight = counts / np.maximum(counts + m, 1e-12)
    return weight * category_means(scores, groups, k) + (1.0 - weight) * scores.mean(axis=0)


def choose_map_shrinkage(scores: np.ndarray, groups: np.ndarray, clf: OutcomeClassifier,
                         grid: list[float]) -> float:
    """The m whose argmax map, fitted on the other inner folds, routes each fold's prompts (by their out-of-fold
    predicted category) to the best mean outcome; ties go to the smaller m."""
    k = len(clf.categories)
    predicted = clf.oof_probs.argmax(axis=1)
    totals = np.zeros(len(grid))
    for f in np.unique(clf.folds):
        held, train = clf.folds == f, clf.folds != f
        for j, m in enumerate(grid):
            choice = shrunk_means(scores[train], groups[train], k, m).argmax(axis=1)
            totals[j] += scores[np.flatnonzero(held), choice[predicted[held]]].sum()
    return float(grid[int(np.argmax(totals))])


def fit_outcome_map(table: OutcomeTable, clf: OutcomeClassifier, budget: float | None,
                    cfg: OutcomeTrainConfig) -> OutcomeMap:
    """MILP map on the per-category means, the general model within budget, τ on out-of-fold π."""
    k = len(clf.categories)
    groups = clf.labels if cfg.map_on == "labelled" else clf.oof_probs.argmax(axis=1)
    m = choose_map_shrinkage(table.scores, groups, clf, cfg.map_shrinkage)
    means = shrunk_means(table.scores, groups, k, m)
    weights = np.bincount(groups, minlength=k).astype(np.float64)
    solution = solve_category_map(means, weights, table.costs, clf.categories, table.model_names, budget=budget)
    general = general_model(table, budget)
    names = table.model_names
    routed_model = np.array([names.index(solution.category_map[clf.categories[c]])
                             for c in clf.oof_probs.argmax(axis=1)])
    rows = np.arange(len(table))
    routed = table.scores[rows, routed_model]
    fallback = table.scores[:, names.index(general)]
    tau = choose_tau(entropy(clf.oof_probs), routed, fallback, cfg.max_fallback_rate, cfg.fallback_min_z)
    raw = category_means(table.scores, groups, k)  # what the map scored on the training rows, unshrunk
    picked = [names.index(solution.category_map[c]) for c in clf.categories]
    train_accuracy = float(weights @ raw[np.arange(k), picked] / weights.sum())
    return OutcomeMap(budget, solution.category_map, general, tau.tau, train_accuracy,
                      solution.avg_params, tau.fallback_rate, m)


def coe_meta(table: OutcomeTable, clf: OutcomeClassifier, fit: OutcomeMap, encoder: str) -> dict[str, Any]:
    return {
        "categories": clf.categories,
        "temperature": clf.temperature,
        "tau_entropy": fit.tau,
        "tau_rule": TAU_RULE,
        "min_confidence": None,
        "category_map": fit.category_map,
        "general_expert": fit.general_model,
        "expert_params_b": dict(zip(table.model_names, table.costs.tolist(), strict=True)),
        "encoder": encoder,
        "dim": int(clf.weights.shape[0]),
        "classifier": {"type": "logistic_regression", "C": clf.c, "class_weight": "balanced"},
        "outcomes": {
            "tables": table_names(sorted(set(table.sources))),
            "models": table.model_names,
            "budget": fit.budget,
            "train_accuracy": round(fit.train_accuracy, 6),
            "train_avg_cost": round(fit.train_avg_cost, 4),
            "oof_fallback_rate": round(fit.oof_fallback_rate, 4),
            "map_shrinkage": fit.map_shrinkage,
        },
    }


def save_outcome_coe(out_dir: str | Path, table: OutcomeTable, clf: OutcomeClassifier, fit: OutcomeMap,
                     encoder: str, training_data: dict[str, str], command: str) -> Path:
    """Write the coe-router artifact (W, b, the category means) for this map."""
    means = category_means(table.scores, clf.labels, len(clf.categories)).astype(np.float32)
    arrays = {"W": clf.weights, "b": clf.bias, "category_means": means}
    return save_artifact(out_dir, ARTIFACT_KIND, ARTIFACT_VERSION, arrays, coe_meta(table, clf, fit, encoder),
                         training_data=training_data, command=command)


def router_at(artifact: str | Path, fit: OutcomeMap) -> CoERouter:
    """The saved classifier with another budget's map, general model and τ (how the frontier is traced)."""
    return CoERouter.from_artifact(artifact, None, general_expert=fit.general_model,
                                   category_map_override=fit.category_map, tau_override=fit.tau)
