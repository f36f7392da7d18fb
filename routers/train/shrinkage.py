"""Empirical-Bayes shrinkage of per-category expert accuracies toward each expert's overall accuracy.

With a few dozen dev questions per category, the spread of an expert's category accuracies is mostly sampling
noise, and a map fitted to raw accuracies routes on that noise. The beta-binomial / James–Stein estimate keeps a
category's deviation from the expert's mean only in the proportion that the spread exceeds the noise: the
between-category variance τ² is estimated by the method of moments (observed variance of the category
accuracies minus their mean binomial variance, floored at 0), and each category's deviation is multiplied by
τ² / (τ² + p(1-p)/n_c). τ² = 0 means the dev data show no category specialisation, and every category gets the
expert's overall accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CategorySignal:
    """One expert's overall accuracy and the estimated SD of its true accuracy across categories."""

    mean: float
    between_sd: float
    sampling_sd: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def shrink_scores(scores: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, list[CategorySignal]]:
    """Shrunk [categories, experts] accuracies for categories with counts > 0, and each expert's signal.

    `scores` are per-category accuracies (NaN where count is 0); the overall mean weights categories by count.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    seen = n > 0
    if seen.sum() < 2:
        raise ValueError("shrinkage needs at least two categories with scored questions")
    out = s.copy()
    signals = []
    for m in range(s.shape[1]):
        acc, k = s[seen, m], n[seen]
        p = float((acc * k).sum() / k.sum())
        noise = p * (1 - p) / k  # binomial variance of each category's accuracy
        tau2 = max(0.0, float(acc.var(ddof=1)) - float(noise.mean()))
        weight = tau2 / (tau2 + noise) if tau2 > 0 else np.zeros_like(noise)
        out[seen, m] = p + weight * (acc - p)
        signals.append(CategorySignal(p, tau2**0.5, float(noise.mean()) ** 0.5))
    return out, signals
