"""RouteLLM's router metrics (arXiv 2406.18665), computed the way `routellm/evals/evaluate.py` and `benchmarks.py` do.

A two-model router gives each prompt a score (RouteLLM: the strong model's win rate). Thresholds are the 11 edges of
ten equal-count bins of those scores (`pd.qcut(scores, 10, retbins=True)`: linear-interpolated quantiles, duplicates
kept); at each edge the prompts with score ≥ edge (> edge at the last) go to the strong model. Accuracy is the mean
outcome (in percent) and the x-axis the share of strong calls. AUC is the trapezoid area over the strong share
(0–1), APGR = (AUC − weak area) / (strong area − weak area), and CPT(p) the strong share at which the curve reaches
weak + p·(strong − weak), by `np.interp` over the points sorted by strong share. Contaminated prompts are dropped
before anything is computed, as RouteLLM does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_RESULTS = 10  # RouteLLM's --num-results default


@dataclass(frozen=True)
class RouteLLMMetrics:
    apgr: float
    cpt20: float  # strong share (0-1) needed for 20 % of the performance gap
    cpt50: float
    cpt80: float
    points: list[tuple[float, float]]  # (strong share 0-1, accuracy in outcome units)

    def as_dict(self) -> dict[str, object]:
        return {"apgr": round(self.apgr, 4), "cpt20": round(self.cpt20, 4), "cpt50": round(self.cpt50, 4),
                "cpt80": round(self.cpt80, 4),
                "points": [{"strong_share": round(s, 4), "accuracy": round(a, 4)} for s, a in self.points]}


def threshold_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                    num_results: int = NUM_RESULTS) -> list[tuple[float, float]]:
    """(strong share, mean outcome) at each of RouteLLM's quantile thresholds, in threshold order."""
    s = np.asarray(scores, dtype=np.float64)
    thresholds = np.quantile(s, np.linspace(0.0, 1.0, num_results + 1))
    points = []
    for i, t in enumerate(thresholds):
        pick = s >= t if i != len(thresholds) - 1 else s > t
        outcome = np.where(pick, strong, weak)
        points.append((float(pick.mean()), float(outcome.mean())))
    return points


def routellm_metrics(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                     num_results: int = NUM_RESULTS) -> RouteLLMMetrics:
    """APGR and CPT(20/50/80 %) of a router's per-prompt scores on two models' outcomes (already decontaminated)."""
    strong = np.asarray(strong, dtype=np.float64)
    weak = np.asarray(weak, dtype=np.float64)
    if not (len(scores) == len(strong) == len(weak)) or len(strong) == 0:
        raise ValueError("scores and both outcome columns must be non-empty and of equal length")
    strong_acc, weak_acc = float(strong.mean()), float(weak.mean())
    if strong_acc == weak_acc:
        raise ValueError("the two models have the same mean outcome: APGR is undefined")
    points = threshold_curve(scores, strong, weak, num_results)
    order = sorted(range(len(points)), key=lambda i: points[i][0])  # stable, like sort_values on one column
    x = np.array([points[i][0] for i in order])
    y = np.array([points[i][1] for i in order])
    auc = float(np.trapezoid(y, x))
    weak_auc = float(np.trapezoid(np.full_like(x, weak_acc), x))
    strong_auc = float(np.trapezoid(np.full_like(x, strong_acc), x))
    apgr = (auc - weak_auc) / (strong_auc - weak_auc)
    cpt = [float(np.interp(p * (strong_acc - weak_acc) + weak_acc, y, x)) for p in (0.2, 0.5, 0.8)]
    return RouteLLMMetrics(apgr, cpt[0], cpt[1], cpt[2], [(float(a), float(b)) for a, b in zip(x, y, strict=True)])
