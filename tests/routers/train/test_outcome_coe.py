"""The outcome-trained CoE map: grouped by labelled categories (the paper) or by out-of-fold predicted ones."""

from __future__ import annotations

import numpy as np

from routers.train.outcome_classifier import OutcomeClassifier
from routers.train.outcome_coe import choose_map_shrinkage, fit_outcome_map, shrunk_means
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
    fit = fit_outcome_map(table, clf, None, OutcomeTrainConfig(map_shrinkage=[0.0]))
    assert fit.category_map == {"A": "m0", "B": "m1"}
    assert _test_time_accuracy(table, clf, fit.category_map) == 8 / 14


def test_predicted_map_accounts_for_the_classifiers_mistakes():
    table, clf = _confused_table()
    fit = fit_outcome_map(table, clf, None, OutcomeTrainConfig(map_on="predicted", map_shrinkage=[0.0]))
    assert fit.category_map == {"A": "m0", "B": "m0"}  # most prompts the classifier calls B are A prompts
    assert _test_time_accuracy(table, clf, fit.category_map) == 10 / 14


def test_shrunk_means_pull_small_categories_toward_the_pooled_means():
    scores = np.array([[1.0, 0.0]] * 8 + [[0.0, 1.0]] * 2)
    groups = np.array([0] * 8 + [1] * 2)
    np.testing.assert_allclose(shrunk_means(scores, groups, 2, 0.0), [[1, 0], [0, 1]])
    # B: (2·[0, 1] + 10·[0.8, 0.2]) / 12
    np.testing.assert_allclose(shrunk_means(scores, groups, 2, 10.0)[1], [8 / 12, 4 / 12])
    # a category nobody was assigned to (possible with map_on: predicted) gets the pooled means, also at m = 0
    np.testing.assert_allclose(shrunk_means(scores, groups, 3, 0.0)[2], [0.8, 0.2])


def _noisy_small_category(b_rows: list[list[float]]) -> tuple[np.ndarray, OutcomeClassifier]:
    """40 prompts of A where m0 is right, then B's rows; two inner folds alternate; the classifier is perfect."""
    scores = np.array([[1.0, 0.0]] * 40 + b_rows)
    labels = np.array([0] * 40 + [1] * len(b_rows))
    folds = np.array([0, 1] * 20 + [0, 1] * (len(b_rows) // 2))
    clf = OutcomeClassifier(["A", "B"], np.zeros((4, 2)), np.zeros(2), 1.0, 1.0, labels, folds, np.eye(2)[labels])
    return scores, clf


def test_shrinkage_is_chosen_when_a_small_category_disagrees_between_folds():
    # B's fold-0 rows favour m1 and its fold-1 rows m0: unshrunk, each fold's map picks the other fold's winner
    scores, clf = _noisy_small_category([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert choose_map_shrinkage(scores, clf.labels, clf, [0.0, 100.0]) == 100.0


def test_no_shrinkage_when_a_category_consistently_differs():
    scores, clf = _noisy_small_category([[0.0, 1.0]] * 4)  # B always favours m1: shrinking would flip it
    assert choose_map_shrinkage(scores, clf.labels, clf, [0.0, 100.0]) == 0.0
