"""`coe eval outcomes`: routers trained on recorded outcomes, measured against every single model, random routing at
matched cost and two hindsight oracles, with their quality–cost frontiers and (two models) RouteLLM's APGR/CPT.

python -m coe.cli eval outcomes --train mmlu_pro --cv 5 --json artifacts/outcomes/mmlu_pro-cv.json
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.outcome_metrics import (
    Scored,
    category_oracle,
    cost_to_reach,
    hull_value,
    plot_outcomes,
    prompt_oracle,
    routellm_block,
    score_choices,
    score_mixture,
    upper_hull,
)
from eval.outcome_routing import TOP, FoldResult, route_test
from eval.stats import print_table, write_json
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_embeddings import table_embeddings
from routers.train.outcome_table import OutcomeTable, read_outcome_tables


def resolve_folders(spec: str) -> list[Path]:
    """`a,b` → folders; a relative name that is not a folder here is looked up under COE_DATA_DIR/outcomes."""
    from experts.paths import data_dir

    out = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        path = Path(part)
        if not path.is_dir() and not path.is_absolute():
            candidate = data_dir() / "outcomes" / part
            path = candidate if candidate.is_dir() else path
        out.append(path)
    if not out:
        raise ValueError(f"no outcome folders in {spec!r}")
    return out


def limit_rows(table: OutcomeTable, limit: int | None, seed: int = 0) -> OutcomeTable:
    """At most `limit` prompts per folder, a seeded sample kept in file order (quick runs, CI)."""
    if limit is None:
        return table
    sources = np.array(table.sources)
    rng = np.random.default_rng(seed)
    keep = []
    for source in dict.fromkeys(table.sources):
        rows = np.flatnonzero(sources == source)
        keep.extend(sorted(rng.choice(rows, size=min(limit, len(rows)), replace=False).tolist()))
    return table.subset(keep)


def _frontier(test: OutcomeTable, choices: dict[str, np.ndarray], hull: list[tuple[float, float]],
              several: bool) -> list[dict[str, Any]]:
    points = []
    for key, choice in choices.items():
        s = score_choices(test, choice)
        gap = hull_value(hull, s.avg_cost)
        point = {"budget": None if key == TOP else float(key), **s.as_dict(several),
                 "hull_gap": None if gap is None else round(s.primary - gap, 6)}
        points.append(point)
    return sorted(points, key=lambda p: (p["budget"] is None, p["budget"] or 0.0))


def _singles(test: OutcomeTable) -> dict[str, Scored]:
    return {name: score_choices(test, np.full(len(test), m)) for m, name in enumerate(test.model_names)}


def _random(test: OutcomeTable, train_best: int, target_cost: float) -> Scored:
    """Each prompt to the best training single with probability q, else to the cheapest model; cost matched."""
    cheap = int(np.argmin(test.costs))
    c_best, c_cheap = test.costs[train_best], test.costs[cheap]
    q = 1.0 if c_best == c_cheap else float(np.clip((target_cost - c_cheap) / (c_best - c_cheap), 0.0, 1.0))
    return score_mixture(test, cheap, train_best, q)


def build_report(train: OutcomeTable, test: OutcomeTable, result: FoldResult, hull_range: tuple[float, float] | None,
                 ) -> dict[str, Any]:
    several = len(set(test.sources)) > 1
    key = "macro_accuracy" if several else "accuracy"
    singles = _singles(test)
    hull = upper_hull([(s.avg_cost, s.primary) for s in singles.values()])
    best_name = max(singles, key=lambda n: (singles[n].primary, -singles[n].avg_cost))
    train_best = int(np.argmax(train.scores.mean(axis=0)))
    systems: dict[str, Scored] = dict(singles)
    systems["coe"] = score_choices(test, result.coe[TOP])
    systems["per_prompt"] = score_choices(test, result.per_prompt[TOP])
    systems["random"] = _random(test, train_best, systems["per_prompt"].avg_cost)
    systems["oracle_category"] = score_choices(test, category_oracle(test))
    systems["oracle_prompt"] = score_choices(test, prompt_oracle(test))
    frontier = {"coe": _frontier(test, result.coe, hull, several),
                "per_prompt": _frontier(test, result.per_prompt, hull, several)}
    best = singles[best_name]
    report: dict[str, Any] = {
        "primary": key,
        "systems": {n: s.as_dict(several) for n, s in systems.items()},
        "singles": {n: s.as_dict(several) | {key: round(s.primary, 6)} for n, s in singles.items()},
        "best_single": {"name": best_name, "accuracy": round(best.primary, 6), "avg_cost": best.avg_cost},
        "frontier": frontier,
        "single_hull": [{"avg_cost": c, "accuracy": round(a, 6)} for c, a in hull],
        "gains": _gains(systems, best, frontier, key, hull_range),
    }
    if several:
        report["per_dataset"] = {ds: {n: round(s.per_dataset[ds], 6) for n, s in systems.items()}
                                 for ds in best.per_dataset}
    block = routellm_block(test, {n: g for n, g in (("coe", result.coe_gain), ("per_prompt", result.per_prompt_gap))
                                  if g is not None} | {"random": np.random.default_rng(0).random(len(test))})
    if block is not None:
        report["routellm"] = block
    return report


def _gains(systems: dict[str, Scored], best: Scored, frontier: dict[str, list[dict[str, Any]]], key: str,
           hull_range: tuple[float, float] | None) -> dict[str, Any]:
    """The goal figures: points over the best single, cost share to reach it, the worst gap to the singles' hull."""
    out: dict[str, Any] = {}
    for name in ("coe", "per_prompt"):
        out[f"{name}_top_minus_best_single_points"] = round(100 * (systems[name].primary - best.primary), 3)
        reach = cost_to_reach(frontier[name], best.primary, key)
        out[f"{name}_cost_share_at_best_single"] = None if reach is None else round(reach / best.avg_cost, 4)
        gaps = [p["hull_gap"] for p in frontier[name] if p["budget"] is not None and p["hull_gap"] is not None
                and (hull_range is None or hull_range[0] <= p["budget"] <= hull_range[1])]
        out[f"{name}_min_hull_gap_points"] = round(100 * min(gaps), 3) if gaps else None
    out["hull_range"] = list(hull_range) if hull_range else None
    return out


def print_report(report: dict[str, Any]) -> None:
    key = report["primary"]
    rows = [[name, f"{s.get(key, s['accuracy']):.4f}", f"{s['avg_cost']:.2f}",
             "" if s.get("strong_share") is None else f"{s['strong_share']:.2f}"]
            for name, s in sorted(report["systems"].items(), key=lambda kv: kv[1].get(key, kv[1]["accuracy"]))]
    print_table(f"{report['train']} → {report['test']} ({report['n_test']} prompts)",
                ["system", key, "avg cost (B)", "strong share"], rows)
    print_table("gains", ["figure", "value"], [[k, str(v)] for k, v in report["gains"].items()])
    if "routellm" in report:
        r = report["routellm"]
        print_table(f"RouteLLM metrics ({r['prompts']} prompts, {r['contaminated_excluded']} contaminated excluded)",
                    ["router", "APGR", "CPT(50%)", "CPT(80%)"],
                    [[n, f"{r[n]['apgr']:.3f}", f"{r[n]['cpt50']:.3f}", f"{r[n]['cpt80']:.3f}"]
                     for n in ("coe", "per_prompt", "random") if n in r])


def run_outcomes_eval(train_spec: str, test_spec: str | None, cv: int | None = None, json_path: str | None = None,
                      plot_path: str | None = None, costs: dict[str, float] | None = None,
                      limit: int | None = None, hull_range: tuple[float, float] | None = None,
                      cfg: OutcomeTrainConfig | None = None, encoder: Any = None) -> dict[str, Any]:
    """The whole evaluation; returns (and writes) the report."""
    t0 = time.perf_counter()
    cfg = cfg or OutcomeTrainConfig()
    train_dirs = resolve_folders(train_spec)
    test_dirs = resolve_folders(test_spec) if test_spec else train_dirs
    same = {p.resolve() for p in train_dirs} & {p.resolve() for p in test_dirs}
    if cv is None and same:
        raise ValueError(f"train and test share {sorted(map(str, same))}: use --cv K to K-fold one table by prompt")
    if cv is not None and test_spec and {p.resolve() for p in test_dirs} != {p.resolve() for p in train_dirs}:
        raise ValueError("--cv K-folds the --train tables; leave --test out or give the same folders")
    train = limit_rows(read_outcome_tables(train_dirs, costs), limit)
    x_train = table_embeddings(train, cfg.encoder, encoder)
    test = x_test = None
    if cv is None:
        test = limit_rows(read_outcome_tables(test_dirs, costs), limit)
        if test.model_names != train.model_names:
            raise ValueError(f"test models {test.model_names} differ from the training models {train.model_names}")
        x_test = table_embeddings(test, cfg.encoder, encoder)
    t_embed = time.perf_counter()
    test, result = route_test(train, x_train, test, x_test, cfg, cv)
    report = build_report(train, test, result, hull_range)
    report |= {
        "train": ",".join(str(p) for p in train_dirs), "test": ",".join(str(p) for p in test_dirs), "cv": cv,
        "n_train": len(train), "n_test": len(test), "limit": limit, "models": train.model_names,
        "costs": dict(zip(train.model_names, train.costs.tolist(), strict=True)),
        "routers": _router_info(result),
        "seconds": {"embed": round(t_embed - t0, 1), "total": round(time.perf_counter() - t0, 1)},
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    }
    print_report(report)
    write_json(json_path, report)
    if plot_path or json_path:
        plot_outcomes(report, plot_path or str(Path(str(json_path)).with_suffix(".png")))
    return report


def _router_info(result: FoldResult) -> dict[str, Any]:
    folds: Sequence[dict[str, Any]] = result.info.get("folds", [result.info])
    return {
        "classifier_oof_accuracy": [round(f["classifier_oof_accuracy"], 4) for f in folds],
        "per_prompt_params": [f["per_prompt_params"] for f in folds],
        "coe_top_map": folds[0].get("coe_map"),
        "coe_general": [f.get("coe_general") for f in folds],
        "coe_tau": [round(f.get("coe_tau", float("nan")), 4) for f in folds],
        "coe_map_shrinkage": [f.get("coe_map_shrinkage") for f in folds],
    }
