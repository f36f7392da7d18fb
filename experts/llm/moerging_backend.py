"""A MoErging expert served like any other: the transformers backend over a base model wrapped with LoRA experts.

Per request the global score gᵢ = cos(Eᵢ, q) is computed from the request (q embeds its last user message: the
cheap mode of GLIDER; Eᵢ embeds expert i's instruction from the gates artifact), then generation runs with the
token-level routing of experts/llm/moerging.py. Generation is one request at a time per backend (its lock), so
setting the scores on the shared modules is safe. With `routing_trace` the mean routing weights per module come
back on the last chunk. Tier moves act on the plain model: it is unwrapped before its tensors are captured.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from experts.llm.base import BackendOptions, Chunk, GenerationRequest, Tier
from experts.llm.moerging_model import MoErgingModel, load_experts, load_gates, resolve_path
from experts.llm.transformers_backend import TransformersBackend


def request_text(request: GenerationRequest) -> str:
    """What q embeds: the last user message (the whole conversation when there is none)."""
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else " ".join(m.content for m in request.messages)


class MoErgingBackend(TransformersBackend):
    """TransformersBackend whose model is a MoErgingModel while it is device-resident."""

    def __init__(self, name: str, model_path: str, options: BackendOptions = BackendOptions(), *, artifact: str,
                 alpha: float | None = None, top_k: int | None = None, encoder: Any = None) -> None:
        super().__init__(name, model_path, options)
        self.gates = load_gates(resolve_path(artifact))
        self.lora_experts = load_experts(self.gates.expert_paths)
        self.alpha = float(self.gates.meta.get("alpha", 10.0) if alpha is None else alpha)
        self.top_k = int(self.gates.meta.get("top_k", 2) if top_k is None else top_k)
        self._encoder = encoder
        self._encoder_lock = threading.Lock()
        self._expert_embeddings: np.ndarray | None = None
        self._moe: MoErgingModel | None = None
        self.info.backend = "transformers+moerging"
        self.info.extra = {"lora_experts": ",".join(e.name for e in self.lora_experts)}

    def encoder(self) -> Any:
        """The sentence encoder of the artifact (loaded on first use, or the one passed in)."""
        with self._encoder_lock:
            if self._encoder is None:
                from experts.embed.encoder import SentenceEncoder

                self._encoder = SentenceEncoder(str(self.gates.meta.get("encoder", "registry:all-minilm-l6-v2")))
            if self._expert_embeddings is None:
                texts = [self.gates.instructions[n] for n in self.gates.experts]
                self._expert_embeddings = unit_rows(np.asarray(self._encoder.encode(texts), dtype=np.float64))
            return self._encoder

    def global_scores(self, text: str) -> np.ndarray:
        """gᵢ = cos(Eᵢ, q) for one request text."""
        q = unit_rows(np.asarray(self.encoder().encode([text]), dtype=np.float64))[0]
        assert self._expert_embeddings is not None
        return self._expert_embeddings @ q

    def _materialise(self) -> None:
        super()._materialise()
        self._moe = MoErgingModel(self._model, self.lora_experts, self.gates.gates, self.alpha, self.top_k)
        self.encoder()  # off the request path: the encoder loads with the weights

    def _move_locked(self, tier: Tier) -> None:
        if tier != "device" and self._moe is not None:
            self._model = self._moe.unwrap()  # capture and drop the plain model; wrap again on the way up
            self._moe = None
        super()._move_locked(tier)

    def _run_generation(self, request: GenerationRequest, cancel: threading.Event, on_text) -> Chunk:  # noqa: ANN001
        moe = self._moe
        if moe is None:
            return super()._run_generation(request, cancel, on_text)  # raises: not device-resident
        g = self.global_scores(request_text(request))
        moe.set_global_scores(g)
        moe.capture(request.routing_trace)
        try:
            chunk = super()._run_generation(request, cancel, on_text)
            if request.routing_trace:
                chunk.routing_trace = {**moe.trace(), "global_scores": [round(float(x), 4) for x in g],
                                       "alpha": self.alpha, "top_k": self.top_k}
            return chunk
        finally:
            moe.capture(False)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), so a dot product is a cosine."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
