"""Embeddings cached on disk as .npy, keyed by a hash of the encoder and the exact texts (no pickle)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from experts.paths import cache_dir
from routers.base import Encoder

log = logging.getLogger(__name__)


def texts_key(encoder_ref: str, texts: list[str]) -> str:
    digest = hashlib.sha256(encoder_ref.encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()[:32]


PROGRESS_CHUNK = 256


def _encode(encoder: Encoder, texts: list[str], progress: str | None) -> np.ndarray:
    if progress is None or len(texts) <= PROGRESS_CHUNK:
        return np.asarray(encoder.encode(texts), dtype=np.float32)
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(texts), desc=progress, unit="prompt") as bar:
        for start in range(0, len(texts), PROGRESS_CHUNK):
            chunk = texts[start : start + PROGRESS_CHUNK]
            parts.append(np.asarray(encoder.encode(chunk), dtype=np.float32))
            bar.update(len(chunk))
    return np.concatenate(parts)


def cached_embeddings(encoder: Encoder, encoder_ref: str, texts: list[str], folder: Path | None = None,
                      progress: str | None = None) -> np.ndarray:
    """Encode texts once; later calls with the same encoder and texts read the .npy file.

    `progress` names a progress bar shown while a cache miss is being encoded."""
    root = folder or cache_dir() / "embeddings"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{texts_key(encoder_ref, texts)}.npy"
    if path.is_file():
        emb = np.load(path, allow_pickle=False)
        if emb.shape[0] == len(texts):
            return emb
        log.warning("embedding cache has the wrong row count; recomputing", extra={"path": str(path)})
    emb = _encode(encoder, texts, progress)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb, allow_pickle=False)
    tmp.replace(path)
    return emb


class CachedEncoder:
    """An Encoder that reads and fills the embedding cache (offline evaluation routes the same texts often)."""

    def __init__(self, inner: Encoder, ref: str, folder: Path | None = None):
        self.inner = inner
        self.ref = ref
        self.folder = folder

    def encode(self, texts: list[str]) -> np.ndarray:
        return cached_embeddings(self.inner, self.ref, texts, self.folder)
