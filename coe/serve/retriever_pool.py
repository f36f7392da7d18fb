"""Ray Serve deployment for routed retrieval: expert query encoders + faiss indexes, with request batching."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from ray import serve

from coe.api.errors import NotFound
from coe.retrieval import RetrievalRequestError, RetrievalResult, RetrievalService
from coe.retrieval_config import RetrievalConfig
from coe.serve.messages import EmbedAnswer, Refusal, RetrieveAnswer

log = logging.getLogger(__name__)


def as_json(results: list[RetrievalResult]) -> RetrieveAnswer:
    """The results as the JSON array the client gets, serialised once here: ten documents with their text
    travel to the gateway as one bytes object (no pickling of nested dicts) and leave it without a re-encode."""
    data = json.dumps([r.as_dict() for r in results], ensure_ascii=False, separators=(",", ":")).encode()
    return RetrieveAnswer([r.decision.expert for r in results], data)


class RetrieverPool:
    """Loads adapters, router and every available corpus index before it reports healthy."""

    def __init__(self, retrieval: dict[str, Any]) -> None:
        config = RetrievalConfig.model_validate(retrieval)
        if config.threads is not None:
            import torch

            torch.set_num_threads(config.threads)
        self.service = RetrievalService(config)
        self.service.load()
        self.unavailable = self.service.load_indexes()  # a dataset not present here: served as 404 until it is
        for corpus, why in self.unavailable.items():
            log.warning("corpus unavailable", extra={"corpus": corpus, "error": why})

    # No wait for company: a lone query would pay the whole timeout, and queries that arrive while a batch is
    # being encoded (this replica's loop is busy with it) are still taken together by the next batch.
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def _retrieve_batch(self, items: list[tuple[str, str, int, str | None]]
                              ) -> list[RetrieveAnswer | Refusal]:
        """Single-query requests arriving together are encoded together, grouped by corpus, top_k and expert;
        each answer is a RetrieveAnswer (`as_json`) or a Refusal."""
        groups: dict[tuple[str, int, str | None], list[int]] = defaultdict(list)
        for i, (corpus, _, top_k, expert) in enumerate(items):
            groups[(corpus, top_k, expert)].append(i)
        out: list[RetrieveAnswer | Refusal] = [RetrieveAnswer([], b"[]") for _ in items]
        for (corpus, top_k, expert), rows in groups.items():
            try:
                results = self.service.retrieve(corpus, [items[i][1] for i in rows], top_k, expert)
                for i, res in zip(rows, results, strict=True):
                    out[i] = as_json([res])
            except RetrievalRequestError as err:
                for i in rows:
                    out[i] = Refusal(err)
        return out

    def _check_available(self, corpus: str) -> Refusal | None:
        if corpus in self.unavailable:
            return Refusal(NotFound(f"corpus {corpus!r} is configured but its data is missing here", "corpus"))
        return None

    async def retrieve(self, corpus: str, queries: list[str], top_k: int, expert: str | None
                       ) -> RetrieveAnswer | Refusal:
        """The results already serialised (see `as_json`), or a Refusal naming the bad field."""
        missing = self._check_available(corpus)
        if missing:
            return missing
        if len(queries) == 1:
            return await self._retrieve_batch((corpus, queries[0], top_k, expert))  # an error of the batch is ours
        try:
            return as_json(self.service.retrieve(corpus, queries, top_k, expert))
        except RetrievalRequestError as err:
            return Refusal(err)

    async def embed(self, texts: list[str], model: str) -> EmbedAnswer | Refusal:
        try:
            emb, decisions = self.service.embed(texts, model)
        except RetrievalRequestError as err:
            return Refusal(err)
        return EmbedAnswer(emb.tolist(), [d.as_dict() for d in decisions])

    async def corpora(self) -> list[dict[str, Any]]:
        return [c | {"available": c["name"] not in self.unavailable} for c in self.service.corpora()]

    async def models(self) -> list[str]:
        return self.service.expert_names()
