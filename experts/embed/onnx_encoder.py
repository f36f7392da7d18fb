"""The exported MiniLM run by ONNX Runtime: fast `tokenizers` tokenisation, mean pooling and L2 norm in numpy.

At batch 1 the sentence-transformers path spends as long in Python bookkeeping as in the model; here one prompt
is one tokenizer call, one `session.run` and a few numpy ops. Loads lazily; `session.run` is thread-safe.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from experts.embed.encoder_build import ONNX_FILE, SETTINGS_FILE, TOKENIZER_FILE


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors where mask is 1, then L2-normalised (what sentence-transformers computes)."""
    m = mask[..., None].astype(np.float32)
    summed = (hidden * m).sum(axis=1)
    pooled = summed / np.clip(m.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


class OnnxEncoder:
    """`encode(texts)`: L2-normalised float32 embeddings from `folder` (model.onnx, tokenizer.json, encoder.json)."""

    def __init__(self, ref: str, folder: Path, threads: int | None = 1, batch_size: int = 64):
        self.ref = ref
        self.folder = Path(folder)
        self.threads = threads
        self.batch_size = batch_size
        self.settings = json.loads((self.folder / SETTINGS_FILE).read_text())
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: set[str] = set()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self.settings["dim"])

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        tokenizer.enable_truncation(max_length=int(self.settings["max_seq_length"]))
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.folder / ONNX_FILE), options,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer
        self._inputs = {i.name for i in self._session.get_inputs()}  # a fused graph may drop token_type_ids

    def _ready(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load()
        return self._session, self._tokenizer

    def _run(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._ready()
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = session.run(["last_hidden_state"], feeds)
        return mean_pool(hidden, mask)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= self.batch_size:
            return self._run(texts)
        # Length-sorted batches pad less (what sentence-transformers does for bulk encoding).
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return out
