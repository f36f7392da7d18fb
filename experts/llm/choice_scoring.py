"""Multiple-choice scoring with a causal LM: the log-likelihood of each choice after the prompt, per character.

Dividing by the choice's length in characters (lm-evaluation-harness's acc_norm) keeps long titles from losing
just for being long, and does not depend on the tokenizer. One forward pass scores all choices of an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from experts.llm.tasks import ChoiceItem


def choice_logprobs(model: Any, tokenizer: Any, prompt: str, choices: Sequence[str]) -> np.ndarray:
    """Sum of log p(choice tokens | prompt) for each choice, from one right-padded batch."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    conts = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    rows = [p + c for c in conts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    out = np.zeros(len(choices))
    for i, c in enumerate(conts):
        positions = torch.arange(len(p) - 1, len(p) - 1 + len(c))  # logits at t predict token t+1
        out[i] = float(logp[i, positions, torch.tensor(c)].sum())
    return out


def predict(model: Any, tokenizer: Any, item: ChoiceItem) -> int:
    """Index of the choice with the highest log-likelihood per character."""
    logp = choice_logprobs(model, tokenizer, item.prompt, item.choices)
    per_char = logp / np.array([max(1, len(c)) for c in item.choices])
    return int(np.argmax(per_char))


def accuracy(model: Any, tokenizer: Any, items: Sequence[ChoiceItem]) -> float:
    if not items:
        raise ValueError("no items to score")
    return float(np.mean([predict(model, tokenizer, it) == it.answer for it in items]))
