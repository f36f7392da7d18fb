"""Router artifacts: weights as safetensors, metadata as JSON, a checksummed manifest (experts/artifact_store.py).

A folder holds `weights.safetensors`, `meta.json` and `manifest.json`; the manifest names the artifact kind,
its format version, the sha256 of the other two files, the training-data checksums and the command that
rebuilt it, so a corrupt or mismatched artifact stops start-up with a message naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experts.artifact_store import (
    MANIFEST_FILE,
    META_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    data_checksum,
    load_arrays,
    open_artifact,
    read_manifest,
    read_object,
    save_arrays,
    sha256_file,
    write_json,
    write_manifest,
)

CHECKED_FILES = (WEIGHTS_FILE, META_FILE)
__all__ = ["MANIFEST_FILE", "META_FILE", "WEIGHTS_FILE", "Artifact", "ArtifactError", "data_checksum",
           "check_encoder", "load_artifact", "read_manifest", "save_artifact", "sha256_file"]


@dataclass(frozen=True)
class Artifact:
    """What `load_artifact` returns: verified arrays, metadata and the manifest."""

    path: Path
    kind: str
    version: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    manifest: dict[str, Any]


def save_artifact(
    directory: str | Path,
    kind: str,
    version: int,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    training_data: dict[str, str] | None = None,
    command: str | None = None,
) -> Path:
    """Write weights + meta + manifest into `directory` (created if needed); returns the folder."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_arrays(out / WEIGHTS_FILE, arrays)
    write_json(out / META_FILE, meta)
    write_manifest(out, kind, version, CHECKED_FILES, training_data=dict(sorted((training_data or {}).items())),
                   command=command or "")
    return out


def load_artifact(directory: str | Path, kind: str, version: int | None = None) -> Artifact:
    """Read and verify an artifact folder: kind, format version (when given) and every file checksum."""
    folder = Path(directory)
    manifest = open_artifact(folder, kind, version, CHECKED_FILES)
    arrays = load_arrays(folder / WEIGHTS_FILE)
    meta = read_object(folder / META_FILE)
    return Artifact(folder, kind, int(manifest["format_version"]), arrays, meta, manifest)


def check_encoder(art: Artifact, encoder: object | None) -> None:
    """Refuse an encoder other than the one the artifact was trained with: its embeddings live in another space,
    so the classifier would route silently wrong. Encoders without a `ref` (test fakes) and artifacts that
    record none are not checked."""
    trained = art.meta.get("encoder")
    given = getattr(encoder, "ref", None)
    if trained is None or given is None or trained == given:
        return
    raise ArtifactError(
        f"{art.path}: trained with encoder {trained!r}, but the router is given {given!r}; set router.encoder: "
        f"{trained} or retrain the artifact with `--encoder {given}` (coe train coe-router --encoder {given})")
