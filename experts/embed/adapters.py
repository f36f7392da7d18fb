"""Query-side LoRA adapter artifacts: weights as safetensors, LoRA settings as JSON, a checksummed manifest.

An adapter is a few hundred KB, so it can be committed; the manifest names the base encoder, the training data
checksums and the command that rebuilt it, and loading refuses a file whose sha256 does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

KIND = "retriever-adapter"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
MANIFEST_FILE = "manifest.json"


class AdapterError(RuntimeError):
    """An adapter folder that cannot be used (missing, corrupt, wrong kind); the message names the file."""


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def save_adapter(
    out: str | Path, weights: dict[str, np.ndarray], lora: LoraSpec, meta: dict[str, Any], *,
    training_data: dict[str, str] | None = None, command: str = "", kind: str = KIND, dtype: str = "float32",
) -> Path:
    """Write weights + meta + manifest; `meta` should name its base model so a mismatch is caught on load.
    `kind` tells adapter families apart (query adapters, LLM LoRA experts, MoErging gates); `dtype` "float16"
    halves the file (LLM experts on every linear layer), and loading always gives float32."""
    from safetensors.numpy import save_file

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file({k: np.ascontiguousarray(v, dtype=np.dtype(dtype)) for k, v in weights.items()}, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    _write_json(folder / META_FILE, {**meta, "lora": lora.model_dump()})
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {name: sha256_file(folder / name) for name in (WEIGHTS_FILE, META_FILE)},
        "training_data": dict(sorted((training_data or {}).items())),
        "command": command,
    }
    _write_json(folder / MANIFEST_FILE, manifest)
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AdapterError(f"{path}: missing")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise AdapterError(f"{path}: top level must be a JSON object")
    return data


def load_adapter(path: str | Path, kind: str = KIND) -> AdapterArtifact:
    """Read an adapter folder after checking its kind, version and every file checksum."""
    from safetensors.numpy import load_file

    folder = Path(path)
    manifest = _read_json(folder / MANIFEST_FILE)
    if manifest.get("kind") != kind or manifest.get("format_version") != FORMAT_VERSION:
        raise AdapterError(f"{folder / MANIFEST_FILE}: not a {kind} v{FORMAT_VERSION} artifact")
    files = manifest.get("files") or {}
    for name in (WEIGHTS_FILE, META_FILE):
        file = folder / name
        if not file.is_file():
            raise AdapterError(f"{file}: missing")
        if sha256_file(file) != files.get(name):
            raise AdapterError(f"{file}: sha256 does not match {folder / MANIFEST_FILE}")
    meta = _read_json(folder / META_FILE)
    try:
        weights = {k: v.astype(np.float32) for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    except Exception as err:  # safetensors raises several types for a damaged file
        raise AdapterError(f"{folder / WEIGHTS_FILE}: cannot read safetensors ({err})") from None
    return AdapterArtifact(folder, weights, LoraSpec.model_validate(meta.get("lora", {})), meta, manifest)
