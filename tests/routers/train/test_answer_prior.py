"""Letter-prior correction: a model with a favourite letter is scored on what it knows, without reading answers."""

from __future__ import annotations

import numpy as np
import pytest

from routers.train.answer_prior import AnswerScorer, letter_probabilities
from routers.train.expert_scores import ScoreRecord

BIAS = np.log([0.1, 0.1, 0.1, 0.7])  # prefers "D" whatever the question


def biased(expert: str, answers: list[int]) -> dict[str, ScoreRecord]:
    """Knows every answer (+1 nat on it) but its letter habit outweighs that on A, B and C."""
    return {
        f"q/{i}": ScoreRecord(f"q/{i}", expert, list(BIAS + np.eye(4)[a]), a, 5) for i, a in enumerate(answers)
    }


def test_letter_probabilities_is_a_softmax():
    np.testing.assert_allclose(letter_probabilities([0.0, 0.0, np.log(2.0), -np.inf]), [0.25, 0.25, 0.5, 0.0])


def test_prior_removes_the_letter_habit():
    recs = {"m": biased("m", [0, 1, 2, 3] * 3)}
    ids = list(recs["m"])
    plain = AnswerScorer().correctness(recs, ids)
    assert plain.mean() == 0.25  # right only when the answer is its favourite "D"
    scorer = AnswerScorer.from_records(recs)
    assert scorer.correctness(recs, ids).mean() == 1.0
    prior = np.exp(scorer.log_priors["m"])
    assert prior.sum() == pytest.approx(1.0) and prior.argmax() == 3
    assert scorer.describe()["m"] == [round(float(x), 4) for x in prior]


def test_prior_never_reads_the_answers():
    a = AnswerScorer.from_records({"m": biased("m", [0, 1, 2, 3])})
    shuffled = {k: ScoreRecord(r.id, r.expert, r.ll, 0, r.shots) for k, r in biased("m", [0, 1, 2, 3]).items()}
    b = AnswerScorer.from_records({"m": shuffled})
    np.testing.assert_array_equal(a.log_priors["m"], b.log_priors["m"])


def test_expert_without_prior_is_plain_argmax_and_empty_records_are_refused():
    rec = biased("other", [0])["q/0"]
    scorer = AnswerScorer.from_records({"m": biased("m", [0, 1, 2, 3])})
    assert scorer.prediction(rec) == rec.pred == 3
    with pytest.raises(ValueError, match="no scored questions for 'm'"):
        AnswerScorer.from_records({"m": {}})
