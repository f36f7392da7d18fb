"""The CV fold split: disjoint, covering, stratified, deterministic, MT-Bench turns kept together."""

from __future__ import annotations

import numpy as np
import pytest

from eval.router_encoder_cv import fold_ids, paired_gaps
from routers.train.datasets import LabelledText


def _rows() -> list[LabelledText]:
    rows = [LabelledText(f"s/{i}", f"q{i}", cat, "mmlu", "s")
            for i, cat in enumerate(["math"] * 23 + ["law"] * 11 + ["health"] * 7)]
    for qid in range(81, 95):
        rows += [LabelledText(f"mt_bench/{qid}/{t}", f"t{t}", "writing", "mt_bench", "writing") for t in (1, 2)]
    return rows


def test_folds_are_disjoint_covering_and_balanced_per_category():
    rows, k = _rows(), 5
    folds = fold_ids(rows, k)
    assert folds.shape == (len(rows),) and set(folds.tolist()) == set(range(k))  # every row in exactly one fold
    members = [{r.id for r, f in zip(rows, folds, strict=True) if f == j} for j in range(k)]
    assert sum(len(m) for m in members) == len(rows) and set().union(*members) == {r.id for r in rows}
    for cat in ("math", "law", "health"):
        counts = np.bincount([f for r, f in zip(rows, folds, strict=True) if r.category == cat], minlength=k)
        assert counts.max() - counts.min() <= 1, (cat, counts)


def test_mt_bench_turns_share_a_fold():
    rows = _rows()
    folds = dict(zip((r.id for r in rows), fold_ids(rows, 4), strict=True))
    for qid in range(81, 95):
        assert folds[f"mt_bench/{qid}/1"] == folds[f"mt_bench/{qid}/2"]


def test_folds_are_deterministic_and_seeded():
    rows = _rows()
    assert (fold_ids(rows, 5) == fold_ids(rows, 5)).all()
    assert (fold_ids(list(reversed(rows)), 5)[::-1] == fold_ids(rows, 5)).all()  # row order does not matter
    assert not (fold_ids(rows, 5, seed=1) == fold_ids(rows, 5)).all()


def test_one_fold_is_refused():
    with pytest.raises(ValueError, match="k >= 2"):
        fold_ids(_rows(), 1)


def test_paired_gap_is_per_fold_difference():
    def res(name: str, accs: list[float]) -> dict:
        return {"encoder": name, "folds": [{"category_accuracy": a} for a in accs]}

    gaps = paired_gaps([res("a", [0.7, 0.8, 0.75]), res("b", [0.72, 0.79, 0.80])], "a")
    assert gaps["a"] == {"mean": 0.0, "sd": 0.0, "folds_ahead": 0}
    assert gaps["b"]["folds_ahead"] == 2 and abs(gaps["b"]["mean"] - 0.02) < 1e-12
