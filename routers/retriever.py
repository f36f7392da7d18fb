"""RouterRetriever routing (arXiv 2409.02685): pick the query-encoder expert whose pilot embeddings are closest.

Pilots are KMeans centroids of the base-encoder embeddings of the training queries each expert served best.
`rule="mean"`: the expert with the highest mean cosine similarity to its pilots; `rule="nearest"`: the expert
owning the single most similar pilot. Experts are independent, so adding one only adds its pilots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from routers.artifacts import load_artifact, save_artifact
from routers.base import Encoder, RouteDecision, RouteInput

KIND = "retriever-router"
FORMAT_VERSION = 1
Rule = Literal["mean", "nearest"]
RULES = ("mean", "nearest")


class PilotRouter:
    """Routes queries to expert query encoders by similarity to per-expert pilot embeddings."""

    def __init__(self, pilots: dict[str, np.ndarray], rule: Rule = "mean", encoder: Encoder | None = None):
        if not pilots:
            raise ValueError("a PilotRouter needs at least one expert with pilots")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        dims = {p.shape[1] for p in pilots.values() if p.ndim == 2}
        if len(dims) != 1 or any(p.ndim != 2 or p.shape[0] == 0 for p in pilots.values()):
            raise ValueError("pilots must be non-empty [k, d] arrays of one dimension d")
        self.pilots = {name: _normalise(np.asarray(p, dtype=np.float32)) for name, p in pilots.items()}
        self.rule: Rule = rule
        self.encoder = encoder
        self.dim = dims.pop()

    @property
    def experts(self) -> list[str]:
        return list(self.pilots)

    def scores(self, emb: np.ndarray, rule: Rule | None = None) -> np.ndarray:
        """[n, experts] similarity under the rule (mean or max cosine to each expert's pilots)."""
        emb = _normalise(np.asarray(emb, dtype=np.float32))
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"query embeddings must be [n, {self.dim}], got {list(emb.shape)}")
        reduce = np.mean if (rule or self.rule) == "mean" else np.max
        return np.stack([reduce(emb @ p.T, axis=1) for p in self.pilots.values()], axis=1)

    def route_embeddings(self, emb: np.ndarray, rule: Rule | None = None) -> list[RouteDecision]:
        rule = rule or self.rule
        sims = self.scores(emb, rule)
        names = self.experts
        decisions = []
        for row in sims:
            best = int(np.argmax(row))
            ordered = np.sort(row)[::-1]
            margin = float(ordered[0] - ordered[1]) if len(ordered) > 1 else 1.0
            decisions.append(RouteDecision(
                expert=names[best], category=None, confidence=margin,
                reason=f"pilots {rule}: {names[best]} sim={row[best]:.3f} margin={margin:.3f}",
                scores={n: round(float(s), 4) for n, s in zip(names, row, strict=True)},
                weights={names[best]: 1.0}))
        return decisions

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        if self.encoder is None:
            raise RuntimeError("PilotRouter.route needs an encoder; use route_embeddings otherwise")
        if not inputs:
            return []
        return self.route_embeddings(self.encoder.encode([i.text for i in inputs]))

    def save(self, path: str | Path, meta: dict | None = None, *, training_data: dict[str, str] | None = None,
             command: str | None = None) -> Path:
        arrays = {f"pilots.{name}": p for name, p in self.pilots.items()}
        return save_artifact(path, KIND, FORMAT_VERSION, arrays, {**(meta or {}), "experts": self.experts,
                                                                 "rule": self.rule},
                             training_data=training_data, command=command)

    @classmethod
    def from_artifact(cls, path: str | Path, encoder: Encoder | None = None, rule: Rule | None = None) -> PilotRouter:
        """Load a verified router artifact (checksums, kind, version); `rule` overrides the stored default."""
        art = load_artifact(path, KIND, FORMAT_VERSION)
        experts = art.meta.get("experts") or sorted(k.removeprefix("pilots.") for k in art.arrays)
        pilots = {name: art.arrays[f"pilots.{name}"] for name in experts}
        return cls(pilots, rule or art.meta.get("rule", "mean"), encoder)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
