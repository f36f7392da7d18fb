"""Static (model2vec) embeddings: a prompt is the weighted mean of its tokens' distilled vectors, no network pass."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np


class StaticEncoder:
    """`encode(texts)`: L2-normalised float32 embeddings from a model2vec folder; loads lazily."""

    def __init__(self, ref: str, folder: Path):
        self.ref = ref
        self.folder = Path(folder)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from model2vec import StaticModel

                    self._model = StaticModel.from_pretrained(str(self.folder))
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = np.asarray(self.model.encode(texts, show_progress_bar=False), dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.clip(norms, 1e-12, None)
