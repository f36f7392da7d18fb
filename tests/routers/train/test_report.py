"""Held-out router metrics: a wrong category inside the right super-category counts at the super-category level."""

from __future__ import annotations

import numpy as np

from routers.base import RouteDecision
from routers.train.config import CoETrainConfig
from routers.train.datasets import LabelledText
from routers.train.report import heldout_metrics


def _config() -> CoETrainConfig:
    raw = {
        "super_categories": {"stem": ["math", "physics"], "humanities": ["philosophy"], "chat": ["writing"]},
        "mmlu_subjects": {"alg": "math", "mech": "physics", "rel": "philosophy"},
        "mt_bench": {"categories": {"writing": "writing"}},
        "split": {"modulus": 10, "train": [0, 1, 2, 3, 4, 5], "dev": [6, 7], "heldout": [8, 9]},
        "general_expert": "small",
        "experts": {"small": {"params_b": 0.135}},
    }
    return CoETrainConfig.model_validate(raw)


def test_super_category_accuracy_counts_a_sibling_category_as_right() -> None:
    cfg = _config()
    categories = ["math", "physics", "philosophy", "writing"]
    truth = ["math", "math", "physics", "philosophy"]
    predicted = ["math", "physics", "physics", "math"]  # right, sibling, right, other super-category
    examples = [LabelledText(str(i), "t", c, "mmlu", c) for i, c in enumerate(truth)]
    probs = np.full((4, 4), 0.1)
    for row, c in enumerate(predicted):
        probs[row, categories.index(c)] = 0.7
    decisions = [RouteDecision("small", c, 0.7, "test") for c in predicted]
    h = heldout_metrics(cfg, examples, probs, decisions, categories, ece_bins=5, category_map=cfg.category_map)
    assert h["mmlu_category_accuracy"] == {"n": 4, "accuracy": 0.5}
    assert h["mmlu_super_category_accuracy"] == {"n": 4, "accuracy": 0.75}
    assert h["per_super_category_mmlu_super_level"]["stem"] == {"n": 3, "accuracy": 1.0}
    assert h["per_super_category_mmlu"]["stem"] == {"n": 3, "accuracy": 0.6667}
    assert h["per_super_category_mmlu_super_level"]["humanities"] == {"n": 1, "accuracy": 0.0}
