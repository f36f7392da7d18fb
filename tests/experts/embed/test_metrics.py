"""nDCG@10 and recall@100 through pytrec_eval agree with the textbook formulas."""

from __future__ import annotations

import math

import pytest

from experts.embed.metrics import per_query


def test_ndcg10_equals_textbook_value() -> None:
    # ranking: d1 (rel 3), d2 (0), d3 (2), d4 (0), d5 (1); ideal: 3, 2, 1
    run = {"q": {"d1": 5.0, "d2": 4.0, "d3": 3.0, "d4": 2.0, "d5": 1.0}}
    qrels = {"q": {"d1": 3, "d3": 2, "d5": 1}}
    dcg = 3 / math.log2(2) + 2 / math.log2(4) + 1 / math.log2(6)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert per_query(run, qrels)["q"] == pytest.approx(dcg / idcg, abs=1e-9)
    assert dcg / idcg == pytest.approx(0.92125, abs=1e-5)


def test_unretrieved_query_scores_zero_and_counts_in_mean() -> None:
    run = {"a": {"d1": 1.0}}
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}}
    assert per_query(run, qrels) == {"a": 1.0, "b": 0.0}  # b counts (as 0) in any mean over the queries


def test_recall100() -> None:
    run = {"q": {"d1": 2.0, "x": 1.0}}
    qrels = {"q": {"d1": 1, "d2": 1, "d3": 1, "d4": 1}}
    assert per_query(run, qrels, "recall100")["q"] == 0.25
