"""Choice scoring on a shared prompt cache equals scoring each whole sequence, for the plain model and MoErging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from experts.llm.choice_scoring import predict, score_choices
from experts.llm.tasks import ChoiceItem

ROOT = Path(__file__).resolve().parents[3]
PROMPT = "Text: the effect of wing sweep on the lift of a delta wing at supersonic speeds was measured\nTitle:"
CHOICES = (" Lift of swept delta wings at supersonic speed", " Library catalogues", " On wings",
           " A note on the drag of bodies of revolution in hypersonic flow")


def whole_sequence_logprobs(model, tok, prompt: str, choices) -> np.ndarray:
    """Reference: each prompt + choice run alone, no cache, no padding."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    out = []
    for c in choices:
        ids = tok(c, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=torch.tensor([p + ids])).logits[0].float(), dim=-1)
        out.append(float(sum(logp[len(p) - 1 + j, t] for j, t in enumerate(ids))))
    return np.array(out)


@pytest.fixture(scope="module")
def moerging():
    from eval.glider import load_moerging

    _, mm, tok = load_moerging(ROOT / "artifacts" / "glider-moerging")
    return mm, tok


def test_cached_scores_equal_whole_sequences_with_token_routing(moerging):
    mm, tok = moerging
    mm.set_global_scores(np.array([0.35, 0.30, 0.25]))
    mm.set_routing(10.0, 2)
    scores = score_choices(mm.model, tok, PROMPT, CHOICES)
    np.testing.assert_allclose(scores.logprob, whole_sequence_logprobs(mm.model, tok, PROMPT, CHOICES), atol=1e-3)
    assert list(scores.tokens) == [len(tok(c, add_special_tokens=False)["input_ids"]) for c in CHOICES]
    assert list(scores.chars) == [len(c) for c in CHOICES]


def test_cached_scores_equal_whole_sequences_on_the_plain_model(moerging):
    mm, tok = moerging
    plain = mm.unwrap()
    try:
        cached = score_choices(plain, tok, PROMPT, CHOICES).logprob
        np.testing.assert_allclose(cached, whole_sequence_logprobs(plain, tok, PROMPT, CHOICES), atol=1e-3)
    finally:
        mm.wrap()


def test_predict_picks_the_best_per_character_score(moerging):
    mm, tok = moerging
    mm.fix_weights([0.0, 0.0, 0.0])
    try:
        per_char = score_choices(mm.model, tok, PROMPT, CHOICES).per_char
        assert predict(mm.model, tok, ChoiceItem(PROMPT, CHOICES, 0)) == int(np.argmax(per_char))
    finally:
        mm.fix_weights(None)


def test_empty_choice_is_refused(moerging):
    mm, tok = moerging
    with pytest.raises(ValueError, match="at least one token"):
        score_choices(mm.model, tok, PROMPT, (" a", ""))
