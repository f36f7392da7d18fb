"""The outcome-trained CoE map: grouped by labelled categories (the paper) or by out-of-fold predicted ones."""

from __future__ import annotations

import numpy as np

from routers.train.outcome_classifier import OutcomeClassifier
from routers.train.outcome_coe import fit_outcome_map
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_table import ModelInfo, OutcomeTable


def _confused_table() -> tuple[OutcomeTable, OutcomeClassifier]:
    """10 prompts of A (only m0 right), 4 of B (only m1 right); the classifier calls 6 of the A prompts B."""
    labels = np.array([0] * 10 + [1] * 4)
    predicted = np.array([0] * 4 + [1] * 6 + [1] * 4)
    scores = np.array([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 4)
    n = len(labels)
    table = OutcomeTable("t", [f"p{i}" for i in range(n)], [f"prompt {i}" for i in range(n)],
                         ["A" if c == 0 else "B" for c in labels], scores,
                         [ModelInfo("m0", 1.0, 1.0), ModelInfo("m1", 1.0, 1.0)],
                         np.zeros(n, dtype=bool), ["t"] * n)
    oof = np.eye(2)[predicted] * 0.98 + 0.01
    clf = OutcomeClassifier(["A", "B"], np.zeros((4, 2)), np.zeros(2), 1.0, 1.0, labels, np.arange(n) % 2, oof)
    return table, clf


def _test_time_accuracy(table: OutcomeTable, clf: OutcomeClassifier, category_map: dict[str, str]) -> float:
    routed = [table.model_names.index(category_map[clf.categories[c]]) for c in clf.oof_probs.argmax(axis=1)]
    return float(table.scores[np.arange(len(table)), routed].mean())


def test_labelled_map_follows_the_true_categories():
    table, clf = _confused_table()
    fit = fit_outcome_map(table, clf, None, OutcomeTrainConfig())
    assert fit.category_map == {"A": "m0", "B": "m1"}
    assert _test_time_accuracy(table, clf, fit.category_map) == 8 / 14


def test_predicted_map_accounts_for_the_classifiers_mistakes():
    table, clf = _confused_table()
    fit = fit_outcome_map(table, clf, None, OutcomeTrainConfig(map_on="predicted"))
    assert fit.category_map == {"A": "m0", "B": "m0"}  # most prompts the classifier calls B are A prompts
    assert _test_time_accuracy(table, clf, fit.category_map) == 10 / 14
