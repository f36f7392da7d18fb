"""CoE two-stage router (arXiv 2412.01868): category classifier over prompt embeddings + category→expert map.

π(x) = softmax((embed(x)·W + b) / T); the request falls back to the general expert when the router is unsure
(entropy H(π) > τ, or max π < τ' when set) or when the predicted category has no expert in the map.
Everything after the embedding is plain numpy so it can be tested with a fake encoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routers.artifacts import Artifact, check_encoder, load_artifact
from routers.base import Encoder, RouteDecision, RouteInput

ARTIFACT_KIND = "coe-router"
ARTIFACT_VERSION = 1
TOP_SCORES = 3


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / T, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy in nats (0·log 0 = 0); uniform over K categories gives log K."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


class CoERouter:
    """Batched category routing with an entropy (and optional confidence) fallback to the general expert."""

    def __init__(
        self,
        encoder: Encoder | None,
        weights: np.ndarray,
        bias: np.ndarray,
        categories: Sequence[str],
        temperature: float,
        category_map: Mapping[str, str],
        general_expert: str,
        tau_entropy: float,
        min_confidence: float | None = None,
    ):
        w = np.asarray(weights, dtype=np.float64)
        b = np.asarray(bias, dtype=np.float64).reshape(-1)
        if w.ndim != 2 or w.shape[1] != len(categories) or b.shape[0] != len(categories):
            raise ValueError(f"classifier shapes do not match {len(categories)} categories: W{w.shape}, b{b.shape}")
        if len(set(categories)) != len(categories):
            raise ValueError("category names must be unique")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        unknown = sorted(set(category_map) - set(categories))
        if unknown:
            raise ValueError(f"category_map names categories the classifier does not know: {unknown}")
        self.encoder = encoder
        self.weights = w
        self.bias = b
        self.categories = list(categories)
        self.temperature = float(temperature)
        self.category_map = dict(category_map)
        self.general_expert = general_expert
        self.tau_entropy = float(tau_entropy)
        self.min_confidence = min_confidence

    @classmethod
    def from_artifact(
        cls,
        path: str | Path,
        encoder: Encoder | None,
        general_expert: str | None = None,
        category_map_override: Mapping[str, str] | None = None,
        tau_override: float | None = None,
    ) -> CoERouter:
        """Load a verified `coe-router` artifact; overrides replace general expert / τ, update map entries.
        An encoder other than the artifact's (`meta.encoder`) is refused (ArtifactError)."""
        return cls.from_loaded(load_artifact(path, ARTIFACT_KIND, ARTIFACT_VERSION), encoder, general_expert,
                               category_map_override, tau_override)

    @classmethod
    def from_loaded(
        cls,
        art: Artifact,
        encoder: Encoder | None,
        general_expert: str | None = None,
        category_map_override: Mapping[str, str] | None = None,
        tau_override: float | None = None,
        min_confidence_override: float | None = None,
    ) -> CoERouter:
        """The router of an artifact already loaded (`load_artifact(path, ARTIFACT_KIND, ARTIFACT_VERSION)`), so a
        caller can resolve the map from its meta first; the same overrides as `from_artifact`."""
        check_encoder(art, encoder)
        meta = art.meta
        category_map = dict(meta.get("category_map", {}))
        category_map.update(category_map_override or {})
        try:
            return cls(
                encoder,
                art.arrays["W"],
                art.arrays["b"],
                meta["categories"],
                meta["temperature"],
                category_map,
                general_expert or meta["general_expert"],
                meta["tau_entropy"] if tau_override is None else tau_override,
                meta.get("min_confidence") if min_confidence_override is None else min_confidence_override,
            )
        except KeyError as err:
            raise ValueError(f"{art.path}: artifact lacks {err}") from None

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def experts(self) -> set[str]:
        """Every expert this router can send a request to (for checking against the serving config)."""
        return set(self.category_map.values()) | {self.general_expert}

    def stats(self) -> dict[str, Any]:
        """Nothing changes while it serves: no live counters."""
        return {}

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated category distribution π for each embedding row."""
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape [n, {self.dim}], got {emb.shape} (wrong encoder?)")
        return softmax(emb @ self.weights + self.bias, self.temperature)

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        if not inputs:
            return []
        if self.encoder is None:
            raise RuntimeError("CoERouter.route needs an encoder; use route_embeddings for offline use")
        return self.route_embeddings(self.encoder.encode([x.text for x in inputs]))

    def route_embeddings(self, embeddings: np.ndarray) -> list[RouteDecision]:
        """Decisions for precomputed embeddings (offline evaluation uses this)."""
        return self.decide(self.probabilities(embeddings))

    def decide(self, probs: np.ndarray) -> list[RouteDecision]:
        """Decisions from category distributions (rows of π)."""
        ent = entropy(probs)
        return [self._decide_one(p, float(h)) for p, h in zip(probs, ent, strict=True)]

    def _scores(self, p: np.ndarray) -> dict[str, float]:
        top = np.argsort(-p, kind="stable")[:TOP_SCORES]
        return {self.categories[i]: round(float(p[i]), 4) for i in top}

    def _decide_one(self, p: np.ndarray, h: float) -> RouteDecision:
        k = int(np.argmax(p))
        category, conf = self.categories[k], float(p[k])
        scores = self._scores(p)
        general = self.general_expert
        if h > self.tau_entropy:
            reason = f"fallback: entropy {h:.2f} > {self.tau_entropy:.2f}"
            return RouteDecision(general, None, conf, reason, scores, {general: 1.0}, kind="fallback")
        if self.min_confidence is not None and conf < self.min_confidence:
            reason = f"fallback: max p {conf:.2f} < {self.min_confidence:.2f}"
            return RouteDecision(general, None, conf, reason, scores, {general: 1.0}, kind="fallback")
        expert = self.category_map.get(category)
        if expert is None:
            reason = f"category={category} p={conf:.2f} has no expert in the map: general expert"
            return RouteDecision(general, category, conf, reason, scores, {general: 1.0})
        return RouteDecision(expert, category, conf, f"category={category} p={conf:.2f}", scores, {expert: 1.0})
