"""How `coe eval outcomes` routes: train the outcome routers on some tables, replay them on others (or K-fold).

Each router is trained by the same code as `coe train coe-router --outcomes`, saved as its artifact and loaded back
(`CoERouter.from_artifact`, `PerPromptRouter.from_artifact`) before it sees a test prompt; at test time a router
sees only the prompt's embedding. Only the oracles read test outcomes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from routers.artifacts import load_artifact
from routers.coe import ARTIFACT_KIND as COE_KIND
from routers.per_prompt import PerPromptRouter, cost_penalty_for_budget
from routers.train.milp import InfeasibleBudgetError
from routers.train.outcome_classifier import OutcomeClassifier, assign_folds, fit_outcome_classifier
from routers.train.outcome_coe import fit_outcome_map, router_at, save_outcome_coe
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_per_prompt import build_per_prompt, save_per_prompt, select_params
from routers.train.outcome_table import OutcomeTable

TOP = "top"  # the budget key of a router with no cost limit


@dataclass
class FoldResult:
    """Per test prompt of one fold: the model each router picked at each budget, and two-model ranking scores."""

    coe: dict[str, np.ndarray] = field(default_factory=dict)
    per_prompt: dict[str, np.ndarray] = field(default_factory=dict)
    coe_gain: np.ndarray | None = None
    per_prompt_gap: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def budget_grid(table: OutcomeTable, points: int = 16) -> list[float]:
    """Budgets that trace the frontiers: each single model's cost plus a geometric (two models: linear) grid."""
    costs = np.unique(table.costs)
    lo, hi = float(costs[0]), float(costs[-1])
    grid = lo + (hi - lo) * np.linspace(0.0, 1.0, 11) if len(table.models) == 2 else np.geomspace(lo, hi, points)
    return sorted({round(float(b), 4) for b in np.concatenate([grid, costs])})


def _index(table: OutcomeTable, experts: list[str]) -> np.ndarray:
    names = table.model_names
    return np.array([names.index(e) for e in experts], dtype=np.int64)


def _strong_minus_weak(values: np.ndarray, costs: np.ndarray) -> np.ndarray:
    strong = int(np.argmax(costs))
    return values[:, strong] - values[:, 1 - strong]


def coe_fold(train: OutcomeTable, clf: OutcomeClassifier, x_test: np.ndarray, budgets: list[float],
             cfg: OutcomeTrainConfig, workdir: Path, result: FoldResult) -> None:
    """CoE at the top budget (saved, loaded) and at every feasible budget (same classifier, refitted map)."""
    top = fit_outcome_map(train, clf, None, cfg)
    artifact = save_outcome_coe(workdir / "coe", train, clf, top, cfg.encoder, {}, "coe eval outcomes")
    means = load_artifact(artifact, COE_KIND).arrays["category_means"].astype(np.float64)
    for key, budget in [(TOP, None), *[(f"{b:g}", b) for b in budgets]]:
        try:
            fit = top if budget is None else fit_outcome_map(train, clf, budget, cfg)
        except InfeasibleBudgetError:
            continue
        router = router_at(artifact, fit)
        result.coe[key] = _index(train, [d.expert for d in router.route_embeddings(x_test)])
        if key == TOP:
            result.info["coe_map"] = fit.category_map
            result.info["coe_general"] = fit.general_model
            result.info["coe_tau"] = fit.tau
            result.info["coe_map_shrinkage"] = fit.map_shrinkage
            if len(train.models) == 2:  # RouteLLM's ordering: the expected gain under π
                result.coe_gain = _strong_minus_weak(router.probabilities(x_test) @ means, train.costs)


def per_prompt_fold(train: OutcomeTable, clf: OutcomeClassifier, x_train: np.ndarray, x_test: np.ndarray,
                    test_texts: list[str], budgets: list[float], cfg: OutcomeTrainConfig, workdir: Path,
                    result: FoldResult) -> None:
    """Grid-selected kNN router (saved, loaded); λ per budget found on the test predictions' costs alone."""
    fit = select_params(x_train, train, clf, cfg)
    built = build_per_prompt(x_train, train, clf, fit, cfg)
    artifact = save_per_prompt(workdir / "per_prompt", built, fit, train, cfg.encoder, None, {}, "coe eval outcomes")
    router = PerPromptRouter.from_artifact(artifact, None)
    predicted = router.predict(x_test, test_texts)
    result.per_prompt[TOP] = router.choose(predicted, 0.0)
    for b in budgets:
        result.per_prompt[f"{b:g}"] = router.choose(predicted, cost_penalty_for_budget(predicted, router.costs, b))
    if len(train.models) == 2:
        result.per_prompt_gap = _strong_minus_weak(predicted, router.costs)
    p = fit.params
    result.info["per_prompt_params"] = {"k": p.k, "bandwidth": None if np.isinf(p.bandwidth) else p.bandwidth,
                                        "shrinkage": p.shrinkage, "prior_alpha": fit.prior_alpha,
                                        "validation_score": round(fit.validation_score, 6)}
    result.info["per_prompt_grid"] = fit.grid


def run_fold(train: OutcomeTable, x_train: np.ndarray, x_test: np.ndarray, test_texts: list[str],
             budgets: list[float], cfg: OutcomeTrainConfig) -> FoldResult:
    """Train both routers on `train` and route the test embeddings."""
    result = FoldResult()
    clf = fit_outcome_classifier(x_train, train.categories, cfg)
    result.info["classifier_oof_accuracy"] = float((clf.oof_probs.argmax(axis=1) == clf.labels).mean())
    with tempfile.TemporaryDirectory(prefix="coe-outcomes-") as tmp:
        coe_fold(train, clf, x_test, budgets, cfg, Path(tmp), result)
        per_prompt_fold(train, clf, x_train, x_test, test_texts, budgets, cfg, Path(tmp), result)
    return result


def merge_folds(parts: list[tuple[np.ndarray, FoldResult]], n: int) -> FoldResult:
    """One result over all test prompts from K folds (budgets infeasible in some fold are dropped)."""
    out = FoldResult(info={"folds": [r.info for _, r in parts]})
    for name in ("coe", "per_prompt"):
        keys = set.intersection(*[set(getattr(r, name)) for _, r in parts])
        merged = {}
        for key in keys:
            arr = np.zeros(n, dtype=np.int64)
            for rows, r in parts:
                arr[rows] = getattr(r, name)[key]
            merged[key] = arr
        setattr(out, name, merged)
    for name in ("coe_gain", "per_prompt_gap"):
        if all(getattr(r, name) is not None for _, r in parts):
            arr = np.zeros(n)
            for rows, r in parts:
                arr[rows] = getattr(r, name)
            setattr(out, name, arr)
    return out


def route_test(train: OutcomeTable, x_train: np.ndarray, test: OutcomeTable | None, x_test: np.ndarray | None,
               cfg: OutcomeTrainConfig, cv: int | None) -> tuple[OutcomeTable, FoldResult]:
    """Either train on `train` and route `test`, or (cv=K) K-fold by prompt over `train` alone."""
    budgets = budget_grid(train)
    if cv is None:
        assert test is not None and x_test is not None
        return test, run_fold(train, x_train, x_test, test.prompts, budgets, cfg)
    folds = assign_folds(len(train), cv, cfg.seed + 1)
    parts = []
    for f in tqdm(range(cv), desc="cv folds", unit="fold"):
        held, rest = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        texts = [train.prompts[i] for i in held]
        parts.append((held, run_fold(train.subset(rest), x_train[rest], x_train[held], texts, budgets, cfg)))
    return train, merge_folds(parts, len(train))
