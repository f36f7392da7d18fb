"""BEIR evaluation of routed retrieval: nDCG@10 and recall@100 (pytrec_eval) for every system on every dataset.

Systems: the base encoder, each single expert, the multi-task adapter, the pilot router (mean and nearest
rules), and the oracle that picks the best routable expert per query (the ceiling a router could reach).
Every query is encoded once per expert; a router's ranking is the chosen expert's ranking for that query.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from experts.embed.beir import load_split
from experts.embed.metrics import per_query, run_from_ranking
from experts.embed.query_encoder import ExpertQueryEncoder
from routers.retriever import PilotRouter
from routers.train.retriever import ARTIFACTS, BASE, DEFAULT_ENCODER, EVAL_DATASETS, dataset_folder, dataset_index

log = logging.getLogger(__name__)

DEPTH = 100
METRICS = ("ndcg10", "recall100")


def _dataset_scores(name: str, folder: Path, encoder: ExpertQueryEncoder, systems: list[str],
                    router: PilotRouter | None, split: str, show: bool = False
                    ) -> tuple[dict[str, dict[str, dict[str, float]]], dict]:
    """{metric: {system: {query: value}}} for one dataset, plus how the router spread its queries."""
    from tqdm import tqdm

    data = load_split(folder, split, name=name)
    index = dataset_index(name, folder, encoder, show_progress=show)  # encodes the corpus on a cold cache
    qids = sorted(data.queries)
    texts = [data.queries[q] for q in qids]
    per: dict[str, dict[str, dict[str, float]]] = {m: {} for m in METRICS}
    for system in tqdm(systems, desc=f"{name}: {len(qids)} queries x system", disable=not show, leave=False):
        scores, ids = index.search(encoder.encode(texts, None if system == BASE else system), DEPTH)
        run = run_from_ranking(qids, ids, scores)
        for m in METRICS:
            per[m][system] = per_query(run, data.qrels, m)
    routing: dict[str, dict[str, int]] = {}
    if router is not None:
        base_emb = encoder.encode(texts)
        routable = router.experts
        for rule in ("mean", "nearest"):
            chosen = [d.expert for d in router.route_embeddings(base_emb, rule)]  # type: ignore[arg-type]
            routing[rule] = {e: chosen.count(e) for e in routable if chosen.count(e)}
            for m in METRICS:
                per[m][f"router_{rule}"] = {q: per[m][e][q] for q, e in zip(qids, chosen, strict=True)}
        for m in METRICS:  # the oracle picks per query by nDCG@10, then reports each metric of that choice
            best = {q: max(routable, key=lambda e: per["ndcg10"][e][q]) for q in qids}
            per[m]["oracle"] = {q: per[m][best[q]][q] for q in qids}
    return per, routing


def run_beir_eval(datasets: list[str] | dict[str, str | Path] | None = None, json_path: str | Path | None = None,
                  plot_path: str | Path | None = None, experts: dict[str, Path] | None = None,
                  router_path: Path | None = None, encoder_ref: str = DEFAULT_ENCODER, split: str = "test",
                  show: bool = True, experts_dir: Path = ARTIFACTS) -> dict[str, Any]:
    """Evaluate every system; writes JSON (`ndcg10` = {system: {dataset: value, "avg": value}}) and a PNG."""
    if datasets is None:
        datasets = dict(EVAL_DATASETS)
    elif isinstance(datasets, list):
        datasets = {Path(d).name: d for d in datasets}
    experts = experts if experts is not None else {
        n: experts_dir / n for n in ("scifact", "cranfield", "cisi", "npl", "multitask") if (experts_dir / n).is_dir()}
    encoder = ExpertQueryEncoder(encoder_ref)
    for name, path in experts.items():
        encoder.load_expert(name, path)
    router_path = router_path or experts_dir / "router"
    router = PilotRouter.from_artifact(router_path) if router_path.is_dir() else None
    systems = [BASE, *experts]
    results: dict[str, Any] = {m: {} for m in METRICS}
    routing: dict[str, Any] = {}
    for i, (name, ref) in enumerate(datasets.items(), 1):
        t0 = time.perf_counter()
        if show:
            print(f"beir [{i}/{len(datasets)}] {name}: the corpus index (cached; a cold cache encodes the corpus), "
                  f"then {len(systems)} systems", flush=True)
        per, routing[name] = _dataset_scores(name, dataset_folder(ref), encoder, systems, router, split, show)
        if show:
            print(f"beir [{i}/{len(datasets)}] {name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
        for m in METRICS:
            for system, values in per[m].items():
                results[m].setdefault(system, {})[name] = round(float(np.mean(list(values.values()))), 4)
    for m in METRICS:
        for values in results[m].values():
            values["avg"] = round(float(np.mean([v for k, v in values.items() if k != "avg"])), 4)
    report = {**results, "routing": routing, "datasets": list(datasets), "split": split,
              "oracle_gain_captured": _gain_captured(results["ndcg10"])}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    if plot_path:
        plot_ndcg(results["ndcg10"], Path(plot_path))
    if show:
        print_table(results["ndcg10"], "nDCG@10")
    return report


def _gain_captured(ndcg: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """(router − base) / (oracle − base) on the average: the share of the oracle's headroom a rule realises."""
    if "oracle" not in ndcg:
        return {}
    head = ndcg["oracle"]["avg"] - ndcg[BASE]["avg"]
    return {rule: (round((ndcg[f"router_{rule}"]["avg"] - ndcg[BASE]["avg"]) / head, 3) if head > 0 else None)
            for rule in ("mean", "nearest")}


def print_table(table: dict[str, dict[str, float]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = list(next(iter(table.values())))
    out = Table(title=title)
    out.add_column("system")
    for c in cols:
        out.add_column(c, justify="right")
    for system, values in table.items():
        out.add_row(system, *(f"{100 * values[c]:.1f}" for c in cols))
    Console().print(out)


def plot_ndcg(table: dict[str, dict[str, float]], path: Path) -> None:
    """Grouped bars: one group per dataset (and the average), one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(next(iter(table.values())))
    systems = list(table)
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(cols)), 4.5))
    for i, system in enumerate(systems):
        xs = np.arange(len(cols)) + i * width
        ax.bar(xs, [100 * table[system][c] for c in cols], width, label=system)
    ax.set_xticks(np.arange(len(cols)) + 0.4 - width / 2, cols)
    ax.set_ylabel("nDCG@10")
    ax.set_title("Routed retrieval (BEIR layout, test splits)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
