"""`coe eval routing --dev-cv`: choose how expert scores are read (letter prior, shrinkage) without held-out data.

The dev split has two buckets; the map is fitted on one at each budget and measured on the other (true categories,
so only the map is judged), both ways round. A scoring variant whose maps do not beat the line here has found no
category signal that the held-out frontier could show.
"""

from __future__ import annotations

import asyncio
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from eval.routing import Point, hull_line, line_accuracy, picked_correct
from eval.stats import print_table, write_json
from routers.train.category_map import answer_scorer, score_table
from routers.train.config import CoETrainConfig, load_train_config
from routers.train.datasets import MMLUQuestion, mmlu_split
from routers.train.expert_scores import BackendFactory, ScoreRecord, score_experts, transformers_factory
from routers.train.milp import InfeasibleBudgetError

VARIANTS = list(product(["none", "dev"], ["none", "empirical_bayes"]))


def _variant(cfg: CoETrainConfig, prior: str, shrink: str) -> CoETrainConfig:
    scoring = cfg.scoring.model_copy(update={"answer_prior": prior, "shrinkage": shrink})
    return cfg.model_copy(update={"scoring": scoring})


def _one_way(
    cfg: CoETrainConfig, recs: dict[str, dict[str, ScoreRecord]], fit: list[MMLUQuestion], test: list[MMLUQuestion]
) -> tuple[list[float], float, float]:
    """Gaps to the test bucket's line at every budget (NaN: infeasible), the top budget's accuracy, the best single."""
    experts = list(recs)
    params = np.array([cfg.experts[e].params_b for e in experts])
    fit_recs = {e: {q.id: r[q.id] for q in fit} for e, r in recs.items()}
    scorer = answer_scorer(cfg.scoring, fit_recs)
    table = score_table(cfg, fit_recs, fit, scorer)
    correct = scorer.correctness(recs, [q.id for q in test])
    singles = [Point(e, float(params[i]), float(correct[i].mean())) for i, e in enumerate(experts)]
    hull = hull_line(singles)
    cats = [cfg.mmlu_subjects[q.subject] for q in test]
    gaps, top = [], 0.0
    for budget in [*cfg.milp.sweep, None]:  # None (no budget) comes last: its accuracy is the top budget's
        try:
            sol = table.solve(budget, cfg.milp.max_experts)
        except InfeasibleBudgetError:
            gaps.append(float("nan"))
            continue
        idx, right = picked_correct(experts, [sol.category_map[c] for c in cats], correct)
        acc = float(right.mean())
        gaps.append(acc - line_accuracy(hull, float(params[idx].mean())))
        top = acc
    return gaps, top, max(p.accuracy for p in singles)


def dev_cross_validation(
    cfg: CoETrainConfig, records: dict[str, dict[str, ScoreRecord]], dev: list[MMLUQuestion]
) -> list[dict[str, Any]]:
    """Per scoring variant: mean gap to the line per budget, and the top budget against the best single expert."""
    buckets = sorted({q.index % cfg.split.modulus for q in dev})
    if len(buckets) != 2:
        raise ValueError(f"dev cross-validation needs exactly two dev buckets, the split has {buckets}")
    halves = [[q for q in dev if q.index % cfg.split.modulus == b] for b in buckets]
    rows = []
    for prior, shrink in VARIANTS:
        variant = _variant(cfg, prior, shrink)
        runs = [_one_way(variant, records, halves[i], halves[1 - i]) for i in (0, 1)]
        gaps = np.mean([r[0] for r in runs], axis=0)
        rows.append({
            "answer_prior": prior,
            "shrinkage": shrink,
            "budgets": [*cfg.milp.sweep, None],
            "gap_to_line": [None if np.isnan(g) else round(float(g), 4) for g in gaps],
            "mean_gap": round(float(np.nanmean(gaps)), 4),
            "top_budget_accuracy": round(float(np.mean([r[1] for r in runs])), 4),
            "best_single_accuracy": round(float(np.mean([r[2] for r in runs])), 4),
        })
    return rows


def run_dev_cv(
    config_path: str | Path = "configs/train/coe.yaml",
    json_path: str | Path | None = None,
    factory: BackendFactory | None = None,
) -> list[dict[str, Any]]:
    """Score the dev split (cached), cross-validate every scoring variant, print a table, write JSON."""
    cfg = load_train_config(config_path)
    sc = cfg.scoring
    dev = mmlu_split(cfg, "dev", sc.dev_per_subject)
    make = factory or transformers_factory(sc.device, sc.dtype)
    records = asyncio.run(score_experts(cfg.experts, dev, sc.k_shot, sc.max_prompt_chars, make))
    rows = dev_cross_validation(cfg, records, dev)
    budgets = ["none" if b is None else f"{b:g}" for b in rows[0]["budgets"]]
    print_table(
        f"Dev cross-validation of the map ({len(dev)} dev questions, fit on one bucket, measured on the other)",
        ["answer prior", "shrinkage", f"CoE − line at B = {' / '.join(budgets)}", "mean", "top / best single"],
        [[r["answer_prior"], r["shrinkage"], " ".join("n/a" if g is None else f"{g:+.3f}" for g in r["gap_to_line"]),
          f"{r['mean_gap']:+.4f}",
          f"{r['top_budget_accuracy']:.4f} / {r['best_single_accuracy']:.4f}"] for r in rows],
    )
    write_json(json_path, {"dev_questions": len(dev), "variants": rows})
    return rows
