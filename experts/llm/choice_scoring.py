"""Multiple-choice scoring with a causal LM: the log-likelihood of each choice after the prompt, per character.

Dividing by the choice's length in characters (lm-evaluation-harness's acc_norm) keeps long titles from losing
just for being long, and does not depend on the tokenizer. The prompt is run once and its key/value cache shared
by every choice (the choices are short next to the prompt, so this is most of an item's cost saved); the result
equals scoring each prompt + choice sequence whole, because every layer, MoErging's per-token routing included,
sees only the tokens before each position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from experts.llm.tasks import ChoiceItem


@dataclass(frozen=True)
class ChoiceScores:
    """Per choice: the summed log-likelihood of its tokens after the prompt, and its length in characters/tokens."""

    logprob: np.ndarray
    chars: np.ndarray
    tokens: np.ndarray

    @property
    def per_char(self) -> np.ndarray:
        return self.logprob / np.maximum(1, self.chars)

    @property
    def best(self) -> int:
        """Index of the choice with the highest log-likelihood per character (the prediction)."""
        return int(np.argmax(self.per_char))


def score_choices(model: Any, tokenizer: Any, prompt: str, choices: Sequence[str]) -> ChoiceScores:
    """One forward pass over the prompt, then one over all choices (right-padded) on its repeated cache."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    conts = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    if not p or any(not c for c in conts):
        raise ValueError("the prompt and every choice must have at least one token")
    width = max(len(c) for c in conts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        head = model(input_ids=torch.tensor([p]), use_cache=True)
        cache = head.past_key_values
        cache.batch_repeat_interleave(len(conts))
        # Right padding needs no mask: causal attention keeps every real token from seeing the pads after it.
        ids = torch.tensor([c + [pad] * (width - len(c)) for c in conts])
        tail = model(input_ids=ids, past_key_values=cache, use_cache=True).logits.float()
    first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)  # predicts each choice's first token
    rest = torch.log_softmax(tail, dim=-1)  # position t predicts token t + 1
    out = np.zeros(len(conts))
    for i, c in enumerate(conts):
        later = rest[i, torch.arange(len(c) - 1), torch.tensor(c[1:], dtype=torch.long)].sum() if len(c) > 1 else 0.0
        out[i] = float(first[c[0]] + later)
    return ChoiceScores(out, np.array([len(c) for c in choices]), np.array([len(c) for c in conts]))


def predict(model: Any, tokenizer: Any, item: ChoiceItem) -> int:
    """Index of the choice with the highest log-likelihood per character."""
    return score_choices(model, tokenizer, item.prompt, item.choices).best
