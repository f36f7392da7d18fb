"""Which prompt encoder an encoder ref names, and the one factory that builds it.

Refs: `registry:<name>` (the sentence-transformers model of a pip package, run by PyTorch), `onnx:<name>` and
`onnx-int8:<name>` (the same weights exported to ONNX, fp32 or dynamically quantised int8, run by ONNX Runtime),
`model2vec:<name>` (static token embeddings distilled from the same model with model2vec). `onnx-fused[-int8]:<name>`
first runs ONNX Runtime's transformer optimizer (attention, LayerNorm and GELU fused into single kernels), and any
ONNX kind takes a `-l<k>` suffix (`onnx-fused-int8-l4:<name>`): only the first k transformer layers are exported,
a shallower and faster encoder whose classifier must be retrained. The ONNX and model2vec files are built once from
the local weights by `coe setup` (experts/embed/encoder_build.py); any other ref is a sentence-transformers model
path, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from experts.embed.encoder import REGISTRY_ENCODERS

ONNX_KINDS = ("onnx", "onnx-int8", "onnx-fused", "onnx-fused-int8")  # each also with a `-l<k>` layer suffix
BUILT_KINDS = (*ONNX_KINDS, "model2vec")  # kinds whose files `coe setup` builds into the cache
KINDS = ("registry", *BUILT_KINDS)
_LAYERS = re.compile(r"^(?P<base>onnx[a-z0-9-]*?)-l(?P<k>[1-9][0-9]*)$")


class EncoderError(ValueError):
    """An encoder ref that names nothing known, or whose built files are missing; the message says what to run."""


@runtime_checkable
class PromptEncoder(Protocol):
    """What routers need: the ref it was built from (checked against artifacts), its width, and `encode`."""

    ref: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderRef:
    """A parsed `kind:name` ref; `name` is a registry encoder (the weights every built kind starts from)."""

    kind: str
    name: str

    @staticmethod
    def known_kind(kind: str) -> bool:
        match = _LAYERS.match(kind)
        return kind in KINDS or (match is not None and match["base"] in ONNX_KINDS)

    @property
    def base_kind(self) -> str:
        """The kind without its `-l<k>` suffix (`onnx-fused-int8-l4` → `onnx-fused-int8`)."""
        match = _LAYERS.match(self.kind)
        return match["base"] if match else self.kind

    @property
    def layers(self) -> int | None:
        """How many transformer layers the export keeps (None: all of them)."""
        match = _LAYERS.match(self.kind)
        return int(match["k"]) if match else None

    @property
    def fused(self) -> bool:
        return self.base_kind.startswith("onnx-fused")

    @property
    def int8(self) -> bool:
        return self.base_kind.endswith("-int8")

    @classmethod
    def parse(cls, ref: str) -> EncoderRef | None:
        """The parsed ref, or None for a plain sentence-transformers path; unknown kinds or names raise."""
        kind, sep, name = ref.partition(":")
        if not sep or not cls.known_kind(kind):
            if sep and "/" not in kind and not kind.startswith("."):
                raise EncoderError(f"unknown encoder kind {kind!r} in {ref!r}; known: {', '.join(KINDS)} "
                                   f"(an ONNX kind also takes -l<k>: the first k layers)")
            return None
        if name not in REGISTRY_ENCODERS:
            raise EncoderError(f"unknown encoder {name!r} in {ref!r}; known: {sorted(REGISTRY_ENCODERS)}")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def source(self) -> str:
        """The PyTorch ref the built files are made from (and compared against in tests)."""
        return f"registry:{self.name}"


def make_encoder(ref: str, threads: int | None = 1, batch_size: int = 64) -> PromptEncoder:
    """The encoder `ref` names. `threads`: ONNX Runtime intra-op threads (1 suits one short prompt and leaves
    the cores to the experts; None lets ORT use all cores, for bulk embedding); PyTorch threads are set by the
    caller (coe/serve/routing.py), as before."""
    from experts.embed.encoder import SentenceEncoder

    parsed = EncoderRef.parse(ref)
    if parsed is None or parsed.kind == "registry":
        return SentenceEncoder(ref, batch_size=batch_size)
    from experts.embed.encoder_build import built_dir

    folder = built_dir(parsed)
    if parsed.kind == "model2vec":
        from experts.embed.static_encoder import StaticEncoder

        return StaticEncoder(ref, folder)
    from experts.embed.onnx_encoder import OnnxEncoder

    return OnnxEncoder(ref, folder, threads=threads, batch_size=batch_size)
