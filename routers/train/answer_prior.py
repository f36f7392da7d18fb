"""Letter-bias correction of multiple-choice scores: divide out each expert's prior over the answer letters.

Small models pick a favourite letter whatever the question (SmolLM2-135M never answers "D" on our dev split,
Gemma 3 270M answers "D" 57% of the time). Their raw accuracy on a category then mostly measures how often its
sampled answers happen to be that letter, not what the model knows, and chat traffic has no letters at all.
Dividing the letter probabilities by the expert's average predicted distribution on unlabelled questions
(Zheng et al. 2024, "Large Language Models Are Not Robust Multiple Choice Selectors", PriDe; the prior here is
estimated on the dev split, without its answers) scores knowledge instead of the letter habit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from routers.train.expert_scores import ScoreRecord


def letter_probabilities(ll: Sequence[float]) -> np.ndarray:
    """Softmax over the answer letters' log-likelihoods."""
    x = np.asarray(ll, dtype=np.float64)
    p = np.exp(x - x.max())
    return p / p.sum()


@dataclass(frozen=True)
class AnswerScorer:
    """Turns ScoreRecords into right/wrong; with no prior for an expert it is the plain argmax."""

    log_priors: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Mapping[str, Mapping[str, ScoreRecord]]) -> AnswerScorer:
        """Each expert's prior: its mean letter distribution over `records` (answers are not read)."""
        priors = {}
        for expert, recs in records.items():
            if not recs:
                raise ValueError(f"no scored questions for {expert!r} to estimate its letter prior from")
            mean = np.mean([letter_probabilities(r.ll) for r in recs.values()], axis=0)
            priors[expert] = np.log(mean)
        return cls(priors)

    def prediction(self, rec: ScoreRecord) -> int:
        prior = self.log_priors.get(rec.expert)
        if prior is None:
            return rec.pred
        return int(np.argmax(np.asarray(rec.ll, dtype=np.float64) - prior))

    def correct(self, rec: ScoreRecord) -> bool:
        return self.prediction(rec) == rec.answer

    def correctness(self, records: Mapping[str, Mapping[str, ScoreRecord]], ids: Sequence[str]) -> np.ndarray:
        """[experts, questions] 0/1 matrix in the order of `records` and `ids`."""
        return np.array([[float(self.correct(recs[i])) for i in ids] for recs in records.values()])

    def describe(self) -> dict[str, list[float]]:
        """The priors as probabilities, for reports."""
        return {e: [round(float(x), 4) for x in np.exp(lp)] for e, lp in self.log_priors.items()}
