"""The base sentence encoder with named query-side LoRA adapters: one model in memory, one adapter per expert.

Documents are always encoded with adapters disabled (the base encoder), so one index per corpus serves every
expert; a query is encoded with the adapter of the expert it was routed to.
"""

from __future__ import annotations

import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from experts.embed.adapters import AdapterArtifact, AdapterError, LoraSpec, load_adapter
from experts.embed.encoder import REGISTRY_ENCODERS, resolve_encoder

BASE = None  # `expert=None` means the base encoder
# Up to this many texts are encoded in one direct forward pass (the request path: sentence-transformers'
# `encode` adds ~5 ms of sorting and bookkeeping per call); larger batches go through `encode` for its
# length-sorted batching (index building, evaluation).
DIRECT_FORWARD_MAX = 16
_UNSET = object()


def encoder_id(ref: str) -> str:
    """A string that changes when the encoder weights do: the registry package version, or the ref itself."""
    if ref.startswith("registry:"):
        package = REGISTRY_ENCODERS.get(ref.removeprefix("registry:"), "")
        try:
            return f"{ref}@{metadata.version(package.replace('_', '-'))}"
        except metadata.PackageNotFoundError:
            return ref
    return ref


def _peft_name(expert: str) -> str:
    # peft module keys cannot hold "." and warn when the name is a substring of "lora_"
    return "x_" + expert.replace(".", "_").replace("-", "_")


class ExpertQueryEncoder:
    """`encode(texts, expert=None)`: L2-normalised float32 embeddings; thread-safe, loads lazily."""

    def __init__(self, ref: str = "registry:all-minilm-l6-v2", device: str = "cpu", batch_size: int = 64):
        self.ref = ref
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._peft: Any = None
        self._experts: dict[str, str] = {}
        self._lock = threading.RLock()
        self._tuner_layers: list[Any] = []  # peft's LoRA layers, found once, switched directly
        self._active: object = _UNSET  # the peft adapter name (None: disabled) the layers are set to
        self._rows_for: tuple[slice, str] | None = None  # during `encode_pair`: rows the hooks adapt, and how
        self._hooked: set[int] = set()  # tuner layers that carry the row hook

    @property
    def model(self):
        """The sentence-transformers model (its transformer wrapped by peft once an adapter is added)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(resolve_encoder(self.ref), device=self.device)
                    model.eval()
                    self._model = model
        return self._model

    @property
    def experts(self) -> list[str]:
        return list(self._experts)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def add_adapter(self, expert: str, lora: LoraSpec, weights: dict[str, np.ndarray] | None = None) -> None:
        """Attach a LoRA adapter (fresh, or with the given peft state-dict weights)."""
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from peft.tuners.tuners_utils import BaseTunerLayer

        if expert in self._experts:
            raise ValueError(f"expert {expert!r} already has an adapter")
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules))
        name = _peft_name(expert)
        with self._lock:
            transformer = self.model[0]
            if self._peft is None:
                self._peft = get_peft_model(transformer.auto_model, config, adapter_name=name)
                transformer.auto_model = self._peft
            else:
                self._peft.add_adapter(name, config)
            if weights is not None:
                import torch

                tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
                result: Any = set_peft_model_state_dict(self._peft, tensors, adapter_name=name)
                if result.unexpected_keys:
                    raise AdapterError(f"adapter {expert!r}: unexpected weights {result.unexpected_keys[:3]}")
            self._experts[expert] = name
            self._tuner_layers = [m for m in self._peft.modules() if isinstance(m, BaseTunerLayer)]
            for layer in self._tuner_layers:
                if id(layer) not in self._hooked:
                    layer.register_forward_hook(self._row_hook)
                    self._hooked.add(id(layer))
            self._active = _UNSET  # peft may have changed the active adapter while adding this one
            self.model.eval()

    def load_expert(self, expert: str, path: str | Path) -> AdapterArtifact:
        """Load a verified adapter artifact; refuses one trained on a different base encoder."""
        artifact = load_adapter(path)
        if artifact.base_encoder and artifact.base_encoder != self.ref:
            raise AdapterError(f"{artifact.path}: trained on {artifact.base_encoder!r}, not {self.ref!r}")
        self.add_adapter(expert, artifact.lora, artifact.weights)
        return artifact

    def adapter_weights(self, expert: str) -> dict[str, np.ndarray]:
        """The adapter's weights in peft's state-dict naming (what `save_adapter` writes)."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self._peft, adapter_name=self._name(expert))
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()}

    def _name(self, expert: str) -> str:
        if expert not in self._experts:
            raise KeyError(f"unknown expert {expert!r}; loaded: {sorted(self._experts)}")
        return self._experts[expert]

    def activate(self, expert: str | None, trainable: bool = False) -> None:
        """Make `expert` the active adapter (None: no adapter), switching the LoRA layers only when that changes.

        peft's model-level `set_adapter` and `disable_adapter()` walk every module on each call (1–5 ms on
        this CPU, as long as the forward pass itself), so the layers are found once and switched directly. For
        inference only the two flags each layer's forward reads are set: the layers' own `set_adapter` and
        `enable_adapters` also toggle `requires_grad` on every adapter weight (2.9 ms of CPU per base <->
        expert switch here, measured over 18 layers). `trainable=True` (training) takes peft's way, which
        sets the gradients. Caller holds `lock` across activate + forward.
        """
        if self._peft is None:
            if expert is not None:
                self._name(expert)  # raises: no adapters are loaded
            return
        name = None if expert is None else self._name(expert)
        if name == self._active and not trainable:
            return
        for layer in self._tuner_layers:
            if trainable:
                if name is None:
                    layer.enable_adapters(False)
                else:
                    layer.set_adapter(name)
                    layer.enable_adapters(True)
            else:  # what those set for the forward pass, without the gradient flags
                layer._disable_adapters = name is None
                if name is not None:
                    layer._active_adapter = [name]  # the list peft keeps
        if name is not None:
            self._peft.base_model.active_adapter = name  # what peft's own set_adapter records
        self._active = name

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def encode(self, texts: list[str], expert: str | None = BASE, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            self.activate(expert)
            if len(texts) <= DIRECT_FORWARD_MAX and not show_progress:
                return self._forward(texts)
            return self._encode(texts, show_progress)

    def encode_pair(self, texts: list[str], expert: str) -> tuple[np.ndarray, np.ndarray]:
        """Base and `expert` embeddings of the same texts from one forward pass of both as one batch.

        A routed query needs the base embedding to route and, when the router picks the expert guessed
        here, that expert's: one batch of 2n rows costs about 1.4 forwards of n on this CPU instead of 2.
        peft's own mixed-adapter batches (`adapter_names=`) register hooks on every layer per call and cost
        most of the gain, so the adapters stay off and a hook registered once per LoRA layer adds the
        expert's low-rank update to the second half of the rows only.
        """
        if not texts:
            empty = np.zeros((0, self.dim), dtype=np.float32)
            return empty, empty
        n = len(texts)
        with self._lock:
            name = self._name(expert)
            self.activate(None)
            self._rows_for = (slice(n, 2 * n), name)
            try:
                emb = self._forward(texts + texts)
            finally:
                self._rows_for = None
        return emb[:n], emb[n:]

    def _row_hook(self, layer: Any, args: tuple[Any, ...], out: Any) -> Any:
        """Inside `encode_pair` only: out[rows] += B(A(x[rows])) * scaling of the chosen adapter (what peft's
        LoRA forward adds, here for some rows of the batch)."""
        if self._rows_for is None:
            return None
        rows, name = self._rows_for
        x = args[0][rows]
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        out[rows] += lora_b(lora_a(layer.lora_dropout[name](x.to(lora_a.weight.dtype)))) * layer.scaling[name]
        return out

    def features(self, texts: list[str]) -> dict[str, Any]:
        """Tokenised model inputs on the model's device (for a direct forward pass, with or without grad)."""
        model = self.model
        prepare = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` is deprecated in ST >= 6
        return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One padded batch straight through the model: what `encode` computes, without its per-call overhead."""
        import torch

        with torch.inference_mode():
            emb = self.model(self.features(texts))["sentence_embedding"]
            emb = torch.nn.functional.normalize(emb.float(), dim=-1)
        return emb.cpu().numpy().astype(np.float32, copy=False)

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        emb = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=show_progress)
        return np.asarray(emb, dtype=np.float32)
