"""Figures of `coe eval outcomes` from what each system chose per test prompt: accuracy, cost, frontier, hull,
RouteLLM's APGR/CPT, the table and the plot.

"Accuracy" is the mean recorded outcome (a fraction for 0/1 and [0, 1] scores, the judge score for MT-Bench); with
several test folders the `primary` figure (best single, hull, gains) is the macro average over folders, as
RouterDC reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.routellm_metrics import routellm_metrics
from routers.train.outcome_table import OutcomeTable


@dataclass(frozen=True)
class Scored:
    accuracy: float
    macro_accuracy: float
    avg_cost: float
    per_dataset: dict[str, float]
    strong_share: float | None

    @property
    def primary(self) -> float:
        return self.macro_accuracy

    def as_dict(self, several: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"accuracy": round(self.accuracy, 6), "avg_cost": round(self.avg_cost, 4)}
        if self.strong_share is not None:
            out["strong_share"] = round(self.strong_share, 4)
        if several:
            out["macro_accuracy"] = round(self.macro_accuracy, 6)
        return out


def strong_index(table: OutcomeTable) -> int | None:
    """With two models, the more expensive one is RouteLLM's 'strong' model."""
    if len(table.models) != 2:
        return None
    return int(np.argmax(table.costs))


def score_choices(table: OutcomeTable, choice: np.ndarray) -> Scored:
    """Mean outcome and cost of one model index per test prompt (or the expected outcome of a mixture)."""
    rows = np.arange(len(table))
    outcome = table.scores[rows, choice]
    return _scored(table, outcome, table.costs[choice], choice)


def _scored(table: OutcomeTable, outcome: np.ndarray, cost: np.ndarray, choice: np.ndarray | None,
            strong_weight: np.ndarray | None = None) -> Scored:
    sources = np.array(table.sources)
    per = {Path(s).name: float(outcome[sources == s].mean()) for s in dict.fromkeys(table.sources)}
    strong = strong_index(table)
    share = None
    if strong is not None:
        share = float(strong_weight.mean()) if strong_weight is not None else float((choice == strong).mean())
    return Scored(float(outcome.mean()), float(np.mean(list(per.values()))), float(cost.mean()), per, share)


def score_mixture(table: OutcomeTable, a: int, b: int, share_b: float) -> Scored:
    """Expected figures when each prompt goes to model b with probability share_b, else to a (random routing)."""
    outcome = (1 - share_b) * table.scores[:, a] + share_b * table.scores[:, b]
    cost = np.full(len(table), (1 - share_b) * table.costs[a] + share_b * table.costs[b])
    strong = strong_index(table)
    weight = None
    if strong is not None:
        weight = np.full(len(table), share_b if b == strong else 1 - share_b if a == strong else 0.0)
    return _scored(table, outcome, cost, None, weight)


def category_oracle(table: OutcomeTable) -> np.ndarray:
    """Hindsight: each test category's best model on the test prompts themselves (ties to the cheaper)."""
    choice = np.zeros(len(table), dtype=np.int64)
    cats = np.array(table.categories)
    for c in dict.fromkeys(table.categories):
        rows = cats == c
        means = table.scores[rows].mean(axis=0)
        choice[rows] = max(range(len(means)), key=lambda m: (means[m], -table.costs[m]))
    return choice


def prompt_oracle(table: OutcomeTable) -> np.ndarray:
    """Hindsight: each prompt's best model (ties to the cheaper)."""
    utility = table.scores - 1e-9 * table.costs[None, :]
    return utility.argmax(axis=1)


def upper_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper convex hull of (cost, accuracy), from the cheapest point up to the most accurate one."""
    pts = sorted(set(points), key=lambda p: (p[0], -p[1]))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] lies on or below the chord
                hull.pop()
            else:
                break
        if hull and p[0] == hull[-1][0]:
            continue
        hull.append(p)
    top = int(np.argmax([y for _, y in hull]))
    return hull[: top + 1]


def hull_value(hull: list[tuple[float, float]], cost: float) -> float | None:
    """The hull's accuracy at a cost (flat beyond its most accurate point; None below its cheapest)."""
    if cost < hull[0][0] - 1e-9:
        return None
    xs, ys = [x for x, _ in hull], [y for _, y in hull]
    return float(np.interp(cost, xs, ys))


def cost_to_reach(frontier: list[dict[str, Any]], target: float, key: str) -> float | None:
    """The lowest average cost at which a frontier reaches `target` accuracy (linear between its points)."""
    prev: tuple[float, float] | None = None
    for c, a in sorted((p["avg_cost"], p[key]) for p in frontier):
        if a >= target:
            if prev is None:
                return c
            c0, a0 = prev  # a0 < target <= a
            return c0 + (c - c0) * (target - a0) / (a - a0)
        prev = (c, a)
    return None


def routellm_block(table: OutcomeTable, router_scores: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """APGR / CPT per router on the non-contaminated test prompts (two-model tables only)."""
    strong = strong_index(table)
    if strong is None:
        return None
    keep = ~table.contaminated
    weak = 1 - strong
    s, w = table.scores[keep, strong], table.scores[keep, weak]
    out: dict[str, Any] = {"prompts": int(keep.sum()), "contaminated_excluded": int((~keep).sum()),
                           "strong": table.model_names[strong], "weak": table.model_names[weak]}
    for name, scores in router_scores.items():
        m = routellm_metrics(scores[keep], s, w)
        out[name] = {"apgr": round(m.apgr, 4), "cpt20": round(m.cpt20, 4), "cpt50": round(m.cpt50, 4),
                     "cpt80": round(m.cpt80, 4)}
    return out


def plot_outcomes(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = report["primary"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    singles = report["singles"]
    ax.scatter([s["avg_cost"] for s in singles.values()], [s[key] for s in singles.values()], c="grey", s=14,
               label="single models")
    hull = report["single_hull"]
    ax.plot([p["avg_cost"] for p in hull], [p["accuracy"] for p in hull], "--", c="grey", label="singles' hull")
    for name, style in (("coe", "o-"), ("per_prompt", "s-")):
        pts = sorted((p["avg_cost"], p[key]) for p in report["frontier"][name])
        ax.plot([c for c, _ in pts], [a for _, a in pts], style, ms=4, label=name)
    for name in ("oracle_category", "oracle_prompt"):
        s = report["systems"][name]
        ax.scatter([s["avg_cost"]], [s.get(key, s["accuracy"])], marker="*", s=60, label=f"{name} (hindsight)")
    costs = [s["avg_cost"] for s in singles.values()]
    if max(costs) / max(min(costs), 1e-9) > 8:
        ax.set_xscale("log")
    ax.set_xlabel("average cost per prompt (active parameters, B)")
    ax.set_ylabel("macro accuracy" if key == "macro_accuracy" else "accuracy (mean outcome)")
    ax.set_title(f"{report['train']} → {report['test']}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
