"""The category classifier of an outcome table, with out-of-fold probabilities for everything tuned after it.

Both outcome routers need π(x) on training prompts that the classifier did not see (τ for the CoE fallback, the
prior of the per-prompt router's validation), so the table is split into K folds once and each fold's π comes
from a classifier fitted on the others at the C chosen on all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routers.coe import softmax
from routers.train.calibration import fit_temperature
from routers.train.classifier import fit_logistic, fit_logistic_fixed_c
from routers.train.outcome_config import OutcomeTrainConfig


@dataclass(frozen=True)
class OutcomeClassifier:
    categories: list[str]
    weights: np.ndarray  # W [d, K]
    bias: np.ndarray  # b [K]
    temperature: float
    c: float
    labels: np.ndarray  # [n] category index of each training row
    folds: np.ndarray  # [n] inner fold of each training row
    oof_probs: np.ndarray  # [n, K] calibrated π from the classifier that did not see the row

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(embeddings, dtype=np.float64) @ self.weights + self.bias, self.temperature)


def assign_folds(n: int, k: int, seed: int) -> np.ndarray:
    """A balanced random fold index per row."""
    if n < k:
        raise ValueError(f"{n} training prompts cannot be split into {k} folds")
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % k)


def category_means(scores: np.ndarray, labels: np.ndarray, n_categories: int) -> np.ndarray:
    """[K, M] mean outcome of each model per category; a category without rows gets the overall mean."""
    out = np.tile(scores.mean(axis=0), (n_categories, 1))
    for c in range(n_categories):
        rows = labels == c
        if rows.any():
            out[c] = scores[rows].mean(axis=0)
    return out


def fit_outcome_classifier(embeddings: np.ndarray, row_categories: list[str],
                           cfg: OutcomeTrainConfig) -> OutcomeClassifier:
    """Classifier on all rows, then out-of-fold logits → temperature → calibrated out-of-fold π."""
    categories = sorted(set(row_categories))
    labels = np.array([categories.index(c) for c in row_categories])
    x = np.asarray(embeddings, dtype=np.float32)
    folds = assign_folds(len(x), cfg.folds, cfg.seed)
    if len(categories) == 1:  # one task (GSM8K): π is 1 everywhere and only per-prompt signal can route
        w, b = np.zeros((x.shape[1], 1), dtype=np.float32), np.zeros(1, dtype=np.float32)
        return OutcomeClassifier(categories, w, b, 1.0, 0.0, labels, folds, np.ones((len(x), 1)))
    (w, b), c = fit_logistic(x, labels, len(categories), cfg.classifier)
    oof_logits = np.zeros((len(x), len(categories)))
    for f in range(cfg.folds):
        held = folds == f
        wf, bf = fit_logistic_fixed_c(x[~held], labels[~held], len(categories), c, cfg.classifier)
        oof_logits[held] = x[held].astype(np.float64) @ wf + bf
    temperature = fit_temperature(oof_logits, labels)
    return OutcomeClassifier(categories, w, b, temperature, c, labels, folds, softmax(oof_logits, temperature))
