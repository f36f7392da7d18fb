"""A cascade of two CoE classifiers: a static-embedding one answers when it is sure, the MiniLM one otherwise.

A static encoder embeds a prompt in ~0.1 ms, MiniLM in ~2 ms; if most prompts are confident under the static
classifier, the median route costs the static path and only the unsure ones pay for MiniLM. The threshold is a
max-probability of the static classifier, picked on the training data's dev split (eval/router_encoders.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from routers.base import RouteDecision, RouteInput
from routers.coe import CoERouter


class CascadeRouter:
    """Routes with `fast` where its max π ≥ `min_confidence`, with `full` for the rest; decisions use `full`'s
    category map, τ and general expert, so the cascade only changes which classifier's π a prompt gets."""

    def __init__(self, fast: CoERouter, full: CoERouter, min_confidence: float):
        if fast.categories != full.categories:
            raise ValueError("the cascade's two classifiers must share their categories, in the same order")
        if fast.encoder is None or full.encoder is None:
            raise ValueError("the cascade's two routers each need their encoder")
        if not 0.0 < min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in (0, 1], got {min_confidence}")
        self.fast = fast
        self.full = full
        self.min_confidence = float(min_confidence)
        self.categories = full.categories
        self.last_fast_share = float("nan")  # share of the last batch the static path answered (for benchmarks)

    @property
    def encoder(self) -> object | None:
        return self.full.encoder

    @property
    def category_map(self) -> dict[str, str]:
        """The full router's map (resolved with the config's overrides and aliases before it was built)."""
        return self.full.category_map

    @property
    def experts(self) -> set[str]:
        """Every expert the cascade can send a request to: the full router's (its map decides for both stages)."""
        return self.full.experts

    def stats(self) -> dict[str, Any]:
        """The share of the last batch the static path answered (NaN before the first)."""
        return {"cascade_fast_share": self.last_fast_share}

    def probabilities_of(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """π of each text and whether the fast path gave it."""
        assert self.fast.encoder is not None and self.full.encoder is not None  # checked in __init__
        probs = self.fast.probabilities(self.fast.encoder.encode(texts))
        sure = probs.max(axis=1) >= self.min_confidence
        unsure = np.flatnonzero(~sure)
        if unsure.size:
            probs[unsure] = self.full.probabilities(self.full.encoder.encode([texts[i] for i in unsure]))
        return probs, sure

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        if not inputs:
            return []
        probs, sure = self.probabilities_of([x.text for x in inputs])
        self.last_fast_share = float(sure.mean())
        return self.full.decide(probs)
