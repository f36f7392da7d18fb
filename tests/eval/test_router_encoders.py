"""The candidates' metric and the cascade threshold, chosen on dev only."""

from __future__ import annotations

import numpy as np

from eval.router_encoders import accuracy, pick_threshold
from routers.train.datasets import LabelledText


class Cfg:
    categories = ["math", "physics", "history"]

    @staticmethod
    def super_category_of(category: str) -> str:
        return "stem" if category in ("math", "physics") else "humanities"


def _rows(cats: list[str], source: str = "mmlu") -> list[LabelledText]:
    return [LabelledText(str(i), f"q{i}", c, source, "g") for i, c in enumerate(cats)]


def test_accuracy_counts_mmlu_rows_at_both_levels():
    rows = _rows(["math", "math", "history"]) + _rows(["history"], "mt_bench")
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0, 0, 1], [1, 0, 0]])  # the MT-Bench miss does not count
    assert accuracy(Cfg(), probs, rows) == (2 / 3, 1.0)  # physics for math: wrong category, right super


def test_threshold_is_the_lowest_that_keeps_dev_accuracy():
    dev = _rows(["math", "physics", "history", "math"])
    full = np.eye(3)[[0, 1, 2, 0]].astype(float)  # always right
    # The static classifier is right when sure (0.95) and wrong at 0.6: only a threshold above 0.6 keeps accuracy.
    fast = np.array([[0.95, 0.05, 0], [0.6, 0.4, 0], [0, 0.05, 0.95], [0.95, 0.05, 0]])
    assert pick_threshold(Cfg(), fast, full, dev) == 0.61
    wrong = np.eye(3)[[2, 2, 0, 2]] * 0.99 + 0.0033  # sure and always wrong: nothing may pass it
    assert pick_threshold(Cfg(), wrong, full, dev) == 1.0
