"""GLIDER at request level (arXiv 2410.07172): a local score from the CoE classifier plus α × a global score.

Global score gᵢ = cos(Eᵢ, q): Eᵢ embeds an LLM-written task instruction for expert i (stored as editable JSON text
in the `glider-router` artifact), q embeds the instruction written for the incoming task (cached per task key) or,
in the cheap mode, the prompt itself. Local score s_local(i) = log Σ_{c: map[c]=i} π_c, the log of the
classifier's probability of routing to expert i: with α = 0 softmax(s_local) gives back exactly that probability,
and α·g then acts as a multiplicative tilt exp(α·g) of it (a product of the two opinions), which a raw sum of π
(bounded in [0, 1]) would not give. logits = s_local + α·g, softmax, top-k renormalised.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routers.artifacts import load_artifact
from routers.base import Encoder, RouteDecision, RouteInput
from routers.coe import CoERouter, softmax

ARTIFACT_KIND = "glider-router"
ARTIFACT_VERSION = 1
LOG_FLOOR = 1e-6  # an expert with no category mass keeps log(1e-6), so a strong global score can still pick it
InstructionMode = Literal["cheap", "llm"]
# A few task examples -> one task instruction; None when none can be written now (the prompt stands in, uncached).
InstructionWriter = Callable[[list[str]], str | None]


@dataclass(frozen=True)
class Combined:
    """One row of the GLIDER combination: logits, softmax probabilities and the top-k renormalised weights."""

    logits: np.ndarray
    probs: np.ndarray
    weights: dict[int, float]


def local_scores(pi: np.ndarray, categories: Sequence[str], category_map: Mapping[str, str],
                 experts: Sequence[str]) -> np.ndarray:
    """s_local[n, i] = log Σ_{c mapped to expert i} π[n, c] (floored at LOG_FLOOR); unmapped mass is dropped."""
    p = np.atleast_2d(np.asarray(pi, dtype=np.float64))
    index = {e: i for i, e in enumerate(experts)}
    onehot = np.zeros((len(categories), len(experts)))
    for c, cat in enumerate(categories):
        expert = category_map.get(cat)
        if expert in index:
            onehot[c, index[expert]] = 1.0
    return np.log(np.maximum(p @ onehot, LOG_FLOOR))


def combine(s_local: np.ndarray, g: np.ndarray, alpha: float, top_k: int) -> Combined:
    """logits = s_local + α·g; softmax; the top_k probabilities renormalised to sum to 1 (ties: lower index)."""
    logits = np.asarray(s_local, dtype=np.float64) + float(alpha) * np.asarray(g, dtype=np.float64)
    probs = softmax(logits[None, :])[0]
    top = np.argsort(-probs, kind="stable")[: max(1, top_k)]
    total = float(probs[top].sum())
    return Combined(logits, probs, {int(i): float(probs[i]) / total for i in top})


class InstructionCache:
    """LRU cache of task key -> instruction embedding, with hit/miss counts (exported as router metrics)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()

    def get(self, key: str) -> tuple[str, np.ndarray] | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return item

    def put(self, key: str, instruction: str, embedding: np.ndarray) -> None:
        self._items[key] = (instruction, embedding)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def task_key(x: RouteInput) -> str:
    """Requests of one task share an instruction: the task hint, else the session id, else the text itself."""
    return x.task_hint or x.metadata.get("session") or x.text


class GlobalScorer:
    """gᵢ = cos(Eᵢ, q) with q from the prompt (cheap) or from an LLM-written instruction for the task (llm)."""

    def __init__(self, experts: Sequence[str], instructions: Mapping[str, str], expert_embeddings: np.ndarray,
                 encoder: Encoder | None, mode: InstructionMode = "cheap",
                 writer: InstructionWriter | None = None, cache_size: int = 1024) -> None:
        e = np.asarray(expert_embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] != len(experts):
            raise ValueError(f"expert embeddings {e.shape} do not match {len(experts)} experts")
        if mode == "llm" and writer is None:
            raise ValueError("instruction_mode 'llm' needs an instruction writer")
        self.experts = list(experts)
        self.instructions = dict(instructions)
        self.embeddings = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        self.encoder = encoder
        self.mode = mode
        self.writer = writer
        self.cache = InstructionCache(cache_size)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine of each query row with each expert instruction: [n, N]."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return q @ self.embeddings.T

    def task_embeddings(self, inputs: list[RouteInput]) -> np.ndarray:
        """llm mode: one instruction per distinct task key, written and embedded on a cache miss only; when the
        writer gives none, the prompt is embedded for this request and nothing is cached."""
        if self.writer is None or self.encoder is None:
            raise RuntimeError("llm instruction mode needs a writer and an encoder")
        rows = []
        for x in inputs:
            key = task_key(x)
            item = self.cache.get(key)
            if item is None:
                text = self.writer([x.text])
                written = text is not None
                item = (text or x.text, np.asarray(self.encoder.encode([text or x.text]), dtype=np.float64)[0])
                if written:
                    self.cache.put(key, *item)
            rows.append(item[1])
        return np.stack(rows)


class GliderRouter:
    """Request-level GLIDER over the CoE classifier (local) and instruction embeddings (global)."""

    def __init__(self, local: CoERouter, global_scorer: GlobalScorer, alpha: float = 1.0, top_k: int = 1) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.local = local
        self.global_scorer = global_scorer
        self.alpha = float(alpha)
        self.top_k = int(top_k)

    @property
    def encoder(self) -> Encoder | None:
        return self.local.encoder

    @property
    def category_map(self) -> dict[str, str]:
        return self.local.category_map

    @property
    def experts(self) -> list[str]:
        return self.global_scorer.experts

    def stats(self) -> dict[str, Any]:
        """The instruction cache of llm mode (hits, misses, size); in cheap mode it stays empty."""
        cache = self.global_scorer.cache
        return {"instruction_cache": {"hits": cache.hits, "misses": cache.misses, "size": len(cache)}}

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        if not inputs:
            return []
        if self.encoder is None:
            raise RuntimeError("GliderRouter.route needs an encoder")
        emb = np.asarray(self.encoder.encode([x.text for x in inputs]))
        if self.global_scorer.mode == "cheap":
            g = self.global_scorer.scores(emb)  # the prompt embedding is q: no second encoder pass
        else:
            g = self.global_scorer.scores(self.global_scorer.task_embeddings(inputs))
        return self.decide(self.local.probabilities(emb), g)

    def decide(self, pi: np.ndarray, g: np.ndarray) -> list[RouteDecision]:
        """Decisions from category distributions π [n, K] and global scores g [n, N]."""
        s_local = local_scores(pi, self.local.categories, self.local.category_map, self.experts)
        return [self._decide_one(p, s, gi) for p, s, gi in zip(pi, s_local, g, strict=True)]

    def _decide_one(self, pi: np.ndarray, s_local: np.ndarray, g: np.ndarray) -> RouteDecision:
        c = combine(s_local, g, self.alpha, self.top_k)
        weights = {self.experts[i]: round(w, 4) for i, w in c.weights.items()}
        best = max(c.weights, key=lambda i: c.weights[i])
        category = self.local.categories[int(np.argmax(pi))]
        scores = {e: round(float(p), 4) for e, p in zip(self.experts, c.probs, strict=True)}
        reason = (f"glider: alpha={self.alpha:g} p={c.probs[best]:.2f} local={np.exp(s_local[best]):.2f} "
                  f"global={g[best]:.2f}")
        return RouteDecision(self.experts[best], category, float(c.probs[best]), reason, scores, weights)


def load_global_scorer(path: str | Path, encoder: Encoder | None, mode: InstructionMode = "cheap",
                       writer: InstructionWriter | None = None, aliases: Mapping[str, str] | None = None,
                       cache_size: int = 1024) -> GlobalScorer:
    """A verified `glider-router` artifact; with an encoder the JSON instructions are re-embedded, so an edited
    (and re-sealed) instruction text takes effect without recomputing the stored matrix by hand."""
    art = load_artifact(path, ARTIFACT_KIND, ARTIFACT_VERSION)
    try:
        experts = list(art.meta["experts"])
        instructions = dict(art.meta["instructions"])
    except KeyError as err:
        raise ValueError(f"{Path(path)}: artifact lacks {err}") from None
    missing = [e for e in experts if e not in instructions]
    if missing:
        raise ValueError(f"{Path(path)}: no instruction for experts {missing}")
    emb = art.arrays["E"]
    if encoder is not None:
        emb = np.asarray(encoder.encode([instructions[e] for e in experts]))
    names = [(aliases or {}).get(e, e) for e in experts]
    texts = {(aliases or {}).get(e, e): t for e, t in instructions.items()}
    return GlobalScorer(names, texts, emb, encoder, mode, writer, cache_size)
