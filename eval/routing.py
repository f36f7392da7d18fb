"""`coe eval routing --benchmark mmlu`: the CoE quality–cost frontier on held-out MMLU questions.

Every expert answers every held-out question through its backend (k-shot log-likelihood, cached); the router is
the CoERouter loaded from the artifact and fed through `route()`, exactly as when serving. Compared: each single
expert, random routing, CoE at a sweep of budgets (map from the MILP on dev scores), CoE without the fallback,
and the per-category oracle (best expert per true category, chosen in hindsight on the held-out questions).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.stats import print_table, write_json
from routers.base import Encoder
from routers.coe import CoERouter
from routers.train.category_map import answer_scorer, routed_experts, score_table
from routers.train.config import CoETrainConfig, load_train_config
from routers.train.datasets import MMLUQuestion, mmlu_split
from routers.train.expert_scores import BackendFactory, score_experts, transformers_factory
from routers.train.milp import InfeasibleBudgetError


@dataclass(frozen=True)
class Point:
    name: str
    avg_params: float
    accuracy: float


def _cap(*caps: int | None) -> int | None:
    given = [c for c in caps if c is not None]
    return min(given) if given else None


def hull_line(points: list[Point]) -> list[tuple[float, float]]:
    """Upper concave hull of the single experts' Pareto points: what randomly mixing them buys at each cost."""
    pts = sorted({(p.avg_params, p.accuracy) for p in points})
    hull: list[tuple[float, float]] = []
    for x, y in pts:
        if hull and y <= hull[-1][1]:
            continue  # costlier and not better: never worth mixing in
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (x - x1) <= (y - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append((x, y))
    return hull


def line_accuracy(hull: list[tuple[float, float]], cost: float) -> float:
    """The hull's accuracy at `cost` (flat beyond its ends)."""
    xs, ys = zip(*hull, strict=True)
    return float(np.interp(cost, xs, ys))


def line_mix(singles: list[Point], cost: float) -> dict[str, float]:
    """The mixture of single experts that the hull line stands for at `cost`: expert name → share of traffic."""
    hull = hull_line(singles)
    name: dict[tuple[float, float], str] = {}
    for p in singles:
        name.setdefault((p.avg_params, p.accuracy), p.name)
    if cost <= hull[0][0] or len(hull) == 1:
        return {name[hull[0]]: 1.0}
    if cost >= hull[-1][0]:
        return {name[hull[-1]]: 1.0}
    k = next(i for i, (x, _) in enumerate(hull) if x >= cost)
    (x1, _), (x2, _) = hull[k - 1], hull[k]
    w = (x2 - cost) / (x2 - x1)
    return {name[hull[k - 1]]: w, name[hull[k]]: 1.0 - w}


def line_gap_se(picked: np.ndarray, mix: dict[str, float], experts: list[str], correct: np.ndarray) -> float:
    """Standard error of (routed accuracy − line accuracy), paired over the same questions."""
    line = sum(w * correct[experts.index(e)] for e, w in mix.items())
    gap = picked - line
    return float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("nan")


def picked_correct(experts: list[str], chosen: list[str], correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per question: the chosen expert's index and whether it answered right."""
    idx = np.array([experts.index(e) for e in chosen])
    return idx, correct[idx, np.arange(len(chosen))]


def _score(experts: list[str], chosen: list[str], correct: np.ndarray, params: np.ndarray) -> tuple[float, float]:
    idx, right = picked_correct(experts, chosen, correct)
    return float(right.mean()), float(params[idx].mean())


def _oracle(cfg: CoETrainConfig, qs: list[MMLUQuestion], correct: np.ndarray, params: np.ndarray) -> Point:
    cats = np.array([cfg.mmlu_subjects[q.subject] for q in qs])
    pick = np.zeros(len(qs), dtype=int)
    for c in set(cats):
        mask = cats == c
        acc = correct[:, mask].mean(axis=1)
        # Best accuracy, cheaper expert on ties.
        pick[mask] = min(range(len(acc)), key=lambda m: (-acc[m], params[m]))
    return Point("oracle per category", float(params[pick].mean()), float(correct[pick, np.arange(len(qs))].mean()))


def _router_category_accuracy(router: CoERouter, cfg: CoETrainConfig, qs: list[MMLUQuestion]
                              ) -> tuple[float, float]:
    """Accuracy of the predicted category, and of its super-category (STEM, humanities, ...)."""
    from routers.train.datasets import format_question

    assert router.encoder is not None
    probs = router.probabilities(router.encoder.encode([format_question(q) for q in qs]))
    pred = [router.categories[k] for k in probs.argmax(axis=1)]
    true = [cfg.mmlu_subjects[q.subject] for q in qs]
    category = float(np.mean([p == t for p, t in zip(pred, true, strict=True)]))
    sup = float(np.mean([cfg.super_category_of(p) == cfg.super_category_of(t)
                         for p, t in zip(pred, true, strict=True)]))
    return category, sup


def _budget_rows(
    cfg: CoETrainConfig,
    artifact: Path,
    encoder: Encoder,
    table: Any,
    budgets: list[float | None],
    qs: list[MMLUQuestion],
    correct: np.ndarray,
    experts: list[str],
    params: np.ndarray,
    singles: list[Point],
) -> list[dict[str, Any]]:
    hull = hull_line(singles)
    rows = []
    for budget in budgets:
        try:
            sol = table.solve(budget, cfg.milp.max_experts)
        except InfeasibleBudgetError:
            continue
        router = CoERouter.from_artifact(artifact, encoder, category_map_override=sol.category_map)
        idx, right = picked_correct(experts, routed_experts(router, qs), correct)
        acc, cost = float(right.mean()), float(params[idx].mean())
        se = line_gap_se(right, line_mix(singles, cost), experts, correct)
        rows.append(
            {
                "budget": budget,
                "avg_active_params": round(cost, 4),
                "accuracy": round(acc, 4),
                "line_accuracy": round(line_accuracy(hull, cost), 4),
                "line_gap_se": round(se, 4),
                "map": sol.category_map,
            }
        )
    return rows


async def _records(cfg: CoETrainConfig, dev: list, held: list, factory: BackendFactory | None) -> tuple:
    sc = cfg.scoring
    make = factory or transformers_factory(sc.device, sc.dtype)
    dev_rec = await score_experts(cfg.experts, dev, sc.k_shot, sc.max_prompt_chars, make)
    held_rec = await score_experts(cfg.experts, held, sc.k_shot, sc.max_prompt_chars, make)
    return dev_rec, held_rec


def run_routing_eval(
    benchmark: str = "mmlu",
    limit: int | None = None,
    json_path: str | Path | None = None,
    data_dir: str | Path | None = None,
    config_path: str | Path = "configs/train/coe.yaml",
    artifact: str | Path = "artifacts/coe-router",
    plot_path: str | Path | None = None,
    encoder: Encoder | None = None,
    factory: BackendFactory | None = None,
) -> dict[str, Any]:
    """Measure the frontier; prints a table, writes JSON (and a PNG beside it unless `plot_path` says where)."""
    if benchmark != "mmlu":
        raise ValueError(f"unknown routing benchmark {benchmark!r}; known: mmlu")
    if data_dir is not None:  # the datasets are found through COE_DATA_DIR; restore it afterwards
        previous = os.environ.get("COE_DATA_DIR")
        os.environ["COE_DATA_DIR"] = str(data_dir)
        try:
            return run_routing_eval(benchmark, limit, json_path, None, config_path, artifact, plot_path, encoder,
                                    factory)
        finally:
            if previous is None:
                os.environ.pop("COE_DATA_DIR", None)
            else:
                os.environ["COE_DATA_DIR"] = previous
    cfg = load_train_config(config_path)
    if encoder is None:
        from experts.embed.encoders import make_encoder
        from routers.train.embed_cache import CachedEncoder

        ref = _artifact_encoder(Path(artifact)) or cfg.encoder  # what the artifact was trained with, else the recipe's
        encoder = CachedEncoder(make_encoder(ref, threads=None), ref)
    dev = mmlu_split(cfg, "dev", _cap(limit, cfg.scoring.dev_per_subject))
    held = mmlu_split(cfg, "heldout", _cap(limit, cfg.scoring.heldout_per_subject))
    dev_rec, held_rec = asyncio.run(_records(cfg, dev, held, factory))
    experts = list(held_rec)
    params = np.array([cfg.experts[e].params_b for e in experts])
    scorer = answer_scorer(cfg.scoring, dev_rec)  # letter priors from dev only: held-out answers stay unseen
    correct = scorer.correctness(held_rec, [q.id for q in held])
    singles = [Point(e, float(params[i]), float(correct[i].mean())) for i, e in enumerate(experts)]
    table = score_table(cfg, dev_rec, dev, scorer)
    art = Path(artifact)
    rows = _budget_rows(cfg, art, encoder, table, [*cfg.milp.sweep, None], held, correct, experts, params, singles)
    top = table.solve(None, cfg.milp.max_experts)
    plain = CoERouter.from_artifact(art, encoder, category_map_override=top.category_map, tau_override=float("inf"))
    nf_acc, nf_cost = _score(experts, routed_experts(plain, held), correct, params)
    category_acc, super_acc = _router_category_accuracy(plain, cfg, held)
    extra = [
        Point("random routing", float(params.mean()), float(correct.mean())),
        Point("CoE, no fallback (top budget)", nf_cost, nf_acc),
        _oracle(cfg, held, correct, params),
    ]
    result = {
        "benchmark": benchmark,
        "heldout_questions": len(held),
        "dev_questions": len(dev),
        "k_shot": cfg.scoring.k_shot,
        "answer_prior": cfg.scoring.answer_prior,
        "letter_priors": scorer.describe(),
        "shrinkage": cfg.scoring.shrinkage,
        "category_signal": table.signal(),
        "router_category_accuracy": round(category_acc, 4),
        "router_super_category_accuracy": round(super_acc, 4),
        "best_single_accuracy": round(max(p.accuracy for p in singles), 4),
        "coe_top_budget_accuracy": rows[-1]["accuracy"],
        "singles": [p.__dict__ for p in singles],
        "baselines": [p.__dict__ for p in extra],
        "budgets": rows,
        "dev_scores": table.as_dict(),
    }
    _print(result)
    write_json(json_path, result)
    png = Path(plot_path) if plot_path else (Path(json_path).with_suffix(".png") if json_path else None)
    if png is not None:
        plot_frontier(result, png)
    return result


def _print(result: dict[str, Any]) -> None:
    rows: list[list[Any]] = [[p["name"], p["avg_params"], p["accuracy"], "", ""] for p in result["singles"]]
    rows += [[p["name"], p["avg_params"], p["accuracy"], "", ""] for p in result["baselines"]]
    for r in result["budgets"]:
        label = "CoE, no budget" if r["budget"] is None else f"CoE, B = {r['budget']:.3f}"
        gap = f"{r['accuracy'] - r['line_accuracy']:+.4f} ± {r['line_gap_se']:.4f}"
        rows.append([label, r["avg_active_params"], r["accuracy"], f"{r['line_accuracy']:.4f}", gap])
    fmt = [[n, f"{c:.3f}", f"{a:.4f}", line, gap] for n, c, a, line, gap in rows]
    print_table(
        f"MMLU held-out routing ({result['heldout_questions']} questions, {result['k_shot']}-shot); "
        f"router category accuracy {result['router_category_accuracy']:.4f} "
        f"(super-category {result['router_super_category_accuracy']:.4f})",
        ["system", "avg active params (B)", "accuracy", "single-expert line", "CoE − line ± SE"],
        fmt,
    )


def plot_frontier(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for p in result["singles"]:
        ax.scatter(p["avg_params"], p["accuracy"], marker="s")
        ax.annotate(p["name"], (p["avg_params"], p["accuracy"]), fontsize=7)
    for p in result["baselines"]:
        ax.scatter(p["avg_params"], p["accuracy"], marker="^")
        ax.annotate(p["name"], (p["avg_params"], p["accuracy"]), fontsize=7)
    pts = sorted((r["avg_active_params"], r["accuracy"]) for r in result["budgets"])
    ax.plot(*zip(*pts, strict=True), "o-", label="CoE (MILP map) at budgets")
    ax.set_xlabel("average active parameters (B)")
    ax.set_ylabel("held-out MMLU accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _artifact_encoder(artifact: Path) -> str | None:
    import json

    meta = artifact / "meta.json"
    found = json.loads(meta.read_text()).get("encoder") if meta.is_file() else None
    return str(found) if found else None
