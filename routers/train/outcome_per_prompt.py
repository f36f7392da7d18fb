"""Train the per-prompt router on an outcome table: choose k, kernel and shrinkage on the inner folds, then λ for a
budget on the out-of-fold predictions, and save the `per-prompt-router` artifact.

Selection metric (on prompts no part of the router saw): with two models, the area under the accuracy–strong-share
curve of the predicted gap (what APGR measures); with more, the mean outcome of the top choice (λ = 0), since the
goals are set at the top budget, each source folder weighted alike (the macro average over tasks).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from routers.artifacts import save_artifact
from routers.per_prompt import (
    ARTIFACT_KIND,
    ARTIFACT_VERSION,
    LinearPrior,
    NeighbourParams,
    PerPromptRouter,
    choose_models,
    cost_penalty_for_budget,
    shrunk_prediction,
    text_features,
    top_neighbours,
)
from routers.train.outcome_classifier import OutcomeClassifier, category_means
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_table import OutcomeTable, table_names


@dataclass(frozen=True)
class PerPromptFit:
    params: NeighbourParams
    prior_alpha: float | None  # None: category prior; else the ridge α of the linear prior
    validation_score: float
    grid: list[dict[str, float | None]]  # every candidate's validation score
    oof_predicted: np.ndarray  # [n, M] predictions of the chosen params on the held-out folds


def gap_area(gap: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    """Mean accuracy over every strong share when the largest predicted gaps go to the strong model first."""
    order = np.argsort(-gap, kind="stable")
    gains = np.concatenate([[0.0], np.cumsum(strong[order] - weak[order])])
    return float((weak.sum() + gains).mean() / len(gap))


def folder_weights(sources: list[str]) -> np.ndarray:
    """Row weights that give every source folder the same total (the macro average RouterDC reports)."""
    names, inverse, counts = np.unique(np.array(sources), return_inverse=True, return_counts=True)
    return 1.0 / (counts[inverse] * len(names))


def selection_score(predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                    weights: np.ndarray | None = None) -> float:
    if scores.shape[1] == 2:
        strong, weak = (1, 0) if costs[1] > costs[0] else (0, 1)
        return gap_area(predicted[:, strong] - predicted[:, weak], scores[:, strong], scores[:, weak])
    pick = choose_models(predicted, costs, 0.0)
    w = np.full(len(scores), 1.0 / len(scores)) if weights is None else weights
    return float((w * scores[np.arange(len(scores)), pick]).sum())


def fit_linear_prior(emb: np.ndarray, texts: list[str], scores: np.ndarray, alpha: float,
                     feature_scale: float, stats: tuple[np.ndarray, np.ndarray] | None = None) -> LinearPrior:
    """Closed-form ridge of every model's outcome on [embedding, text features, 1] (the intercept unpenalised)."""
    feats = text_features(texts)
    mean, std = stats if stats is not None else (feats.mean(axis=0), feats.std(axis=0))
    std = np.where(std > 0, std, 1.0)
    prior = LinearPrior(np.zeros((emb.shape[1] + feats.shape[1] + 1, scores.shape[1])), mean, std, feature_scale)
    z = prior.design(emb, texts)
    penalty = alpha * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(z.T @ z + penalty, z.T @ scores)
    return LinearPrior(weights, mean, std, feature_scale)


def _fold_neighbours(emb: np.ndarray, table: OutcomeTable, clf: OutcomeClassifier, cfg: OutcomeTrainConfig):
    """Per inner fold: held-out rows, their neighbours among the other folds, and each candidate prior."""
    grid = cfg.per_prompt
    feats = text_features(table.prompts)
    stats = (feats.mean(axis=0), feats.std(axis=0))
    for f in range(int(clf.folds.max()) + 1):
        held = np.flatnonzero(clf.folds == f)
        train = np.flatnonzero(clf.folds != f)
        idx, sims = top_neighbours(emb[held], emb[train], max(grid.k))
        priors: dict[float | None, np.ndarray] = {}
        for alpha in grid.prior_alpha:
            if alpha is None:
                means = category_means(table.scores[train], clf.labels[train], len(clf.categories))
                priors[alpha] = clf.oof_probs[held] @ means
            else:
                linear = fit_linear_prior(emb[train], [table.prompts[i] for i in train], table.scores[train],
                                          alpha, grid.feature_scale, stats)
                priors[alpha] = linear.predict(emb[held], [table.prompts[i] for i in held])
        yield held, sims, table.scores[train][idx], priors


def select_params(emb: np.ndarray, table: OutcomeTable, clf: OutcomeClassifier,
                  cfg: OutcomeTrainConfig) -> PerPromptFit:
    """Grid search over (k, h, β) on the inner folds."""
    grid = cfg.per_prompt
    folds = list(tqdm(_fold_neighbours(emb, table, clf, cfg), total=cfg.folds, desc="per-prompt neighbours",
                      unit="fold"))
    weights = folder_weights(table.sources)
    results: list[dict[str, float | None]] = []
    best: tuple[float, NeighbourParams, float | None] | None = None
    best_pred = None
    for alpha, k, h, beta in itertools.product(grid.prior_alpha, grid.k, grid.bandwidth, grid.shrinkage):
        params = NeighbourParams(k, math.inf if h is None else h, beta)
        pred = np.zeros_like(table.scores)
        for held, sims, outs, priors in folds:
            pred[held] = shrunk_prediction(sims[:, :k], outs[:, :k], priors[alpha], params.bandwidth, beta)
        score = selection_score(pred, table.scores, table.costs, weights)
        results.append({"prior_alpha": alpha, "k": k, "bandwidth": h, "shrinkage": beta, "score": round(score, 6)})
        if best is None or score > best[0] + 1e-12:
            best, best_pred = (score, params, alpha), pred
    assert best is not None and best_pred is not None
    return PerPromptFit(best[1], best[2], best[0], results, best_pred)


def build_per_prompt(emb: np.ndarray, table: OutcomeTable, clf: OutcomeClassifier, fit: PerPromptFit,
                     cfg: OutcomeTrainConfig, cost_penalty: float = 0.0) -> PerPromptRouter:
    """The router on all training rows with the chosen parameters (and its linear prior refitted on all of them)."""
    means = category_means(table.scores, clf.labels, len(clf.categories))
    linear = None
    if fit.prior_alpha is not None:
        linear = fit_linear_prior(emb, table.prompts, table.scores, fit.prior_alpha, cfg.per_prompt.feature_scale)
    return PerPromptRouter(None, emb, table.scores, table.model_names, table.costs.tolist(), clf.weights, clf.bias,
                           clf.temperature, means, clf.categories, fit.params, cost_penalty, linear)


def save_per_prompt(out_dir: str | Path, router: PerPromptRouter, fit: PerPromptFit, table: OutcomeTable,
                    encoder: str, budget: float | None, training_data: dict[str, str], command: str) -> Path:
    """Write the artifact: training embeddings as float16 keys, their outcomes, classifier and category means."""
    p = router.params
    meta: dict[str, Any] = {
        "models": router.models, "costs": router.costs.tolist(), "categories": router.categories,
        "temperature": router.temperature, "k": p.k, "bandwidth": None if math.isinf(p.bandwidth) else p.bandwidth,
        "shrinkage": p.shrinkage, "prior": "category" if router.linear_prior is None else "linear",
        "prior_alpha": fit.prior_alpha, "cost_penalty": router.cost_penalty, "budget": budget, "encoder": encoder,
        "dim": router.dim, "tables": table_names(sorted(set(table.sources))),
        "selection": {"validation_score": round(fit.validation_score, 6), "grid_size": len(fit.grid),
                      "metric": "gap area (two models) or top-choice mean outcome, on the inner folds"},
    }
    arrays: dict[str, np.ndarray] = {
        "keys": router.keys.astype(np.float16), "outcomes": router.outcomes.astype(np.float16),
        "W": router.classifier_w.astype(np.float32), "b": router.classifier_b.astype(np.float32),
        "category_means": router.category_means.astype(np.float32)}
    if router.linear_prior is not None:
        lp = router.linear_prior
        meta["feature_scale"] = lp.feature_scale
        arrays |= {"linear_w": lp.weights.astype(np.float32), "feature_mean": lp.feature_mean.astype(np.float32),
                   "feature_std": lp.feature_std.astype(np.float32)}
    return save_artifact(out_dir, ARTIFACT_KIND, ARTIFACT_VERSION, arrays, meta, training_data=training_data,
                         command=command)


def train_cost_penalty(fit: PerPromptFit, table: OutcomeTable, budget: float | None) -> float:
    """The smallest λ whose out-of-fold choices keep the average cost within the budget (0 without one)."""
    if budget is None:
        return 0.0
    return cost_penalty_for_budget(fit.oof_predicted, table.costs, budget)
