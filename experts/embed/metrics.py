"""Retrieval metrics through pytrec_eval (the trec_eval definitions BEIR reports), per query and averaged."""

from __future__ import annotations

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]

MEASURES = {"ndcg10": "ndcg_cut_10", "recall100": "recall_100"}


def per_query(run: Run, qrels: Qrels, metric: str = "ndcg10") -> dict[str, float]:
    """Metric value per judged query; a judged query missing from the run scores 0."""
    import pytrec_eval

    measure = MEASURES[metric]
    family = measure.rsplit("_", 1)[0]
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {family})
    # pytrec_eval skips queries with no run entries; score them 0 rather than drop them from the mean
    results = evaluator.evaluate({q: run.get(q) or {"__none__": 0.0} for q in qrels})
    return {q: float(results[q][measure]) for q in qrels}


def run_from_ranking(query_ids: list[str], ids: list[list[str]], scores) -> Run:  # noqa: ANN001
    """A pytrec_eval run from ranked ids and their scores (rows aligned with `query_ids`)."""
    return {q: {d: float(s) for d, s in zip(row, srow, strict=False)}
            for q, row, srow in zip(query_ids, ids, scores, strict=True)}
