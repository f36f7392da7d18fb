"""Query-side LoRA adapter artifacts: weights as safetensors, LoRA settings as JSON, a checksummed manifest.

An adapter is a few hundred KB, so it can be committed; the manifest names the base encoder, the training data
checksums and the command that rebuilt it, and loading refuses a file whose sha256 does not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from experts.artifact_store import (
    MANIFEST_FILE,
    META_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    load_arrays,
    open_artifact,
    read_object,
    save_arrays,
    sha256_file,
    write_json,
    write_manifest,
)

KIND = "retriever-adapter"
FORMAT_VERSION = 1
AdapterError = ArtifactError  # the one artifact error (experts/artifact_store.py), under the name callers know
__all__ = ["FORMAT_VERSION", "KIND", "MANIFEST_FILE", "META_FILE", "WEIGHTS_FILE", "AdapterArtifact", "AdapterError",
           "LoraSpec", "load_adapter", "save_adapter", "sha256_file"]


class LoraSpec(BaseModel):
    """The LoRA shape of a query adapter (RouterRetriever: r=8, alpha=32, dropout 0.1)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "key", "value"])


@dataclass(frozen=True)
class AdapterArtifact:
    """A verified adapter: weights keyed like peft's state dict, its LoRA spec, meta and manifest."""

    path: Path
    weights: dict[str, np.ndarray]
    lora: LoraSpec
    meta: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def base_encoder(self) -> str:
        return str(self.meta.get("base_encoder", ""))


def save_adapter(
    out: str | Path, weights: dict[str, np.ndarray], lora: LoraSpec, meta: dict[str, Any], *,
    training_data: dict[str, str] | None = None, command: str = "", kind: str = KIND, dtype: str = "float32",
) -> Path:
    """Write weights + meta + manifest; `meta` should name its base model so a mismatch is caught on load.
    `kind` tells adapter families apart (query adapters, LLM LoRA experts, MoErging gates); `dtype` "float16"
    halves the file (LLM experts on every linear layer), and loading always gives float32."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    save_arrays(folder / WEIGHTS_FILE, weights, dtype)
    write_json(folder / META_FILE, {**meta, "lora": lora.model_dump()})
    write_manifest(folder, kind, FORMAT_VERSION, (WEIGHTS_FILE, META_FILE),
                   training_data=dict(sorted((training_data or {}).items())), command=command)
    return folder


def load_adapter(path: str | Path, kind: str = KIND) -> AdapterArtifact:
    """Read an adapter folder after checking its kind, version and every file checksum."""
    folder = Path(path)
    manifest = open_artifact(folder, kind, FORMAT_VERSION, (WEIGHTS_FILE, META_FILE))
    meta = read_object(folder / META_FILE)
    weights = {k: v.astype(np.float32) for k, v in load_arrays(folder / WEIGHTS_FILE).items()}
    return AdapterArtifact(folder, weights, LoraSpec.model_validate(meta.get("lora", {})), meta, manifest)
