"""Routed retrieval as a plain object (no Ray, no HTTP): route → encode with the expert adapter → faiss search.

The Serve deployment in `coe/serve` wraps `RetrievalService`; everything here is testable in-process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coe.api.errors import BadRequest, NotFound
from coe.retrieval_config import RETRIEVER_MODEL, RetrievalConfig
from experts.embed.beir import Document, load_corpus
from experts.embed.index import CorpusIndex, load_or_build_index
from experts.embed.query_encoder import ExpertQueryEncoder, encoder_id
from routers.base import RouteDecision
from routers.retriever import PilotRouter

log = logging.getLogger(__name__)

BASE_EXPERT = "base"  # the base encoder without any adapter; always available


class RetrievalRequestError(BadRequest):
    """A retrieval or embedding request that cannot be served; `param` names the bad field (HTTP 400)."""


class RetrievalNotFound(NotFound, RetrievalRequestError):
    """An unknown corpus, expert or model (HTTP 404); still a RetrievalRequestError, so one except catches both."""


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    title: str
    text: str


@dataclass
class RetrievalResult:
    """Ranked documents for one query, the routing decision and where the time went (milliseconds)."""

    hits: list[Hit]
    decision: RouteDecision
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"results": [h.__dict__ for h in self.hits], "coe": self.decision.as_dict(),
                "timings_ms": self.timings_ms}


class RetrievalService:
    """Corpora, expert query encoders and the pilot router behind `retrieve` and `embed`."""

    def __init__(self, config: RetrievalConfig, encoder: ExpertQueryEncoder | None = None):
        self.config = config
        self.encoder = encoder or ExpertQueryEncoder(config.encoder, batch_size=config.batch_size)
        self.router: PilotRouter | None = None
        self._indexes: dict[str, CorpusIndex] = {}
        self._docs: dict[str, dict[str, Document]] = {}
        self._lock = threading.Lock()
        self._loaded = False
        self._routed: dict[str, Counter[str]] = {}  # per corpus: the experts its queries were routed to
        self.guesses = Counter[str]()  # "hit" / "miss" of the expert encoded beside the base (encode_pair)

    # -- start-up -----------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load adapters and the router (verified); a corrupt artifact stops start-up naming the file."""
        if self._loaded:
            return
        for name, path in self.config.experts.items():
            if name not in self.encoder.experts:
                self.encoder.load_expert(name, self.config.resolve(path))
        if self.config.router_artifact is not None:
            router = PilotRouter.from_artifact(self.config.resolve(self.config.router_artifact), rule=self.config.rule)
            unknown = [e for e in router.experts if e not in self.expert_names()]
            if unknown:
                raise ValueError(f"{self.config.router_artifact}: router names experts not configured: {unknown}")
            self.router = router
        self._loaded = True

    def index(self, corpus: str) -> CorpusIndex:
        """The corpus index, loaded or (re)built on first use."""
        self._check_corpus(corpus)
        with self._lock:
            if corpus not in self._indexes:
                folder = self.config.corpora[corpus].folder()
                self._indexes[corpus] = load_or_build_index(
                    corpus, folder, self.encoder, encoder_id(self.config.encoder), self.config.indexes())
                self._docs[corpus] = load_corpus(folder)
            return self._indexes[corpus]

    def load_indexes(self) -> dict[str, str]:
        """Load or build every configured corpus index; returns {corpus: why} for those whose data is missing."""
        missing: dict[str, str] = {}
        for corpus in self.config.corpora:
            try:
                self.index(corpus)
            except FileNotFoundError as err:
                missing[corpus] = str(err)
        return missing

    def expert_names(self) -> list[str]:
        return [BASE_EXPERT, *self.config.experts]

    def corpora(self) -> list[dict[str, Any]]:
        return [{"name": name, "description": c.description, "path": str(c.folder()),
                 "documents": len(self._indexes[name].doc_ids) if name in self._indexes else None}
                for name, c in self.config.corpora.items()]

    # -- requests -----------------------------------------------------------------------------------------
    def retrieve(self, corpus: str, queries: list[str], top_k: int = 10,
                 expert: str | None = None) -> list[RetrievalResult]:
        """Top-k documents per query; `expert=None` routes each query, a name forces that expert."""
        self._check_corpus(corpus)
        self._check_queries(queries)
        if not 0 < top_k <= self.config.max_top_k:
            raise RetrievalRequestError(f"top_k must be in 1..{self.config.max_top_k}, got {top_k}", "top_k")
        index = self.index(corpus)
        emb, decisions, timings = self._embed_routed(queries, expert, guess=self.guess(corpus))
        if expert is None and self.router is not None:
            self._routed.setdefault(corpus, Counter()).update(d.expert for d in decisions)
        start = time.perf_counter()
        scores, ids = index.search(emb, top_k)
        timings["search_ms"] = (time.perf_counter() - start) * 1000
        docs = self._docs[corpus]
        return [RetrievalResult([Hit(d, float(s), docs[d].title, docs[d].text) for d, s in zip(row, srow,
                                                                                               strict=False)],
                                decision, {k: round(v / len(queries), 3) for k, v in timings.items()})
                for row, srow, decision in zip(ids, scores, decisions, strict=True)]

    def embed(self, texts: list[str], model: str = RETRIEVER_MODEL) -> tuple[np.ndarray, list[RouteDecision]]:
        """Query embeddings: `coe-retriever` routes each text, an expert name (or `base`) encodes directly."""
        self._check_queries(texts, param="input")
        expert = None if model == RETRIEVER_MODEL else model
        emb, decisions, _ = self._embed_routed(texts, expert, param="model")
        return emb, decisions

    def guess(self, corpus: str) -> str | None:
        """The expert this corpus's queries were routed to most often so far (None before the first)."""
        seen = self._routed.get(corpus)
        return seen.most_common(1)[0][0] if seen else None

    def _embed_routed(self, texts: list[str], expert: str | None, param: str = "expert",
                      guess: str | None = None) -> tuple[np.ndarray, list[RouteDecision], dict[str, float]]:
        """Embeddings with each text's expert; routed texts are encoded with the base (to route) and, in the
        same forward pass, with `guess`, so a query routed as guessed costs one batched pass, not two."""
        self.load()
        timings: dict[str, float] = {}
        if expert is not None:
            if expert not in self.expert_names():
                raise RetrievalNotFound(f"unknown expert {expert!r}; known: {self.expert_names()}", param)
            decisions = [RouteDecision(expert, None, 1.0, "requested", weights={expert: 1.0})] * len(texts)
        elif self.router is None:
            decisions = [RouteDecision(BASE_EXPERT, None, 1.0, "no router configured")] * len(texts)
        else:
            start = time.perf_counter()
            if guess is not None and guess != BASE_EXPERT:
                base, guessed = self.encoder.encode_pair(texts, guess)
            else:
                base, guessed = self.encoder.encode(texts), None
            decisions = self.router.route_embeddings(base)
            timings["route_ms"] = (time.perf_counter() - start) * 1000
            if guessed is not None:
                self.guesses.update("hit" if d.expert in (guess, BASE_EXPERT) else "miss" for d in decisions)
        start = time.perf_counter()
        emb = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        for name in {d.expert for d in decisions}:
            rows = [i for i, d in enumerate(decisions) if d.expert == name]
            if name == BASE_EXPERT and "route_ms" in timings:
                emb[rows] = base[rows]  # already encoded for routing
                continue
            if "route_ms" in timings and guessed is not None and name == guess:
                emb[rows] = guessed[rows]  # encoded beside the base
                continue
            emb[rows] = self.encoder.encode([texts[i] for i in rows], None if name == BASE_EXPERT else name)
        timings["encode_ms"] = (time.perf_counter() - start) * 1000
        return emb, decisions, timings

    # -- validation ---------------------------------------------------------------------------------------
    def _check_corpus(self, corpus: str) -> None:
        if corpus not in self.config.corpora:
            raise RetrievalNotFound(f"unknown corpus {corpus!r}; known: {sorted(self.config.corpora)}", "corpus")

    def _check_queries(self, queries: list[str], param: str = "queries") -> None:
        if not queries:
            raise RetrievalRequestError("at least one query is required", param)
        if len(queries) > self.config.max_batch:
            raise RetrievalRequestError(f"at most {self.config.max_batch} queries per request", param)
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise RetrievalRequestError(f"query {i} is empty", param)
