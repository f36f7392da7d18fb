"""Prompt embeddings of an outcome table, cached per folder (MiniLM takes minutes for MMLU-Pro on two cores)."""

from __future__ import annotations

import numpy as np

from routers.base import Encoder
from routers.train.embed_cache import cached_embeddings
from routers.train.outcome_table import OutcomeTable


def table_embeddings(table: OutcomeTable, encoder_ref: str, encoder: Encoder | None = None) -> np.ndarray:
    """[n, d] embeddings of the table's prompts, one cache entry per source folder (rows of a folder are contiguous)."""
    if encoder is None:
        from experts.embed.encoders import make_encoder

        encoder = make_encoder(encoder_ref, threads=None)
    sources = np.array(table.sources)
    parts = []
    for source in dict.fromkeys(table.sources):
        rows = np.flatnonzero(sources == source)
        texts = [table.prompts[i] for i in rows]
        parts.append(cached_embeddings(encoder, encoder_ref, texts, progress=f"embed {source}"))
    return np.concatenate(parts).astype(np.float32)
