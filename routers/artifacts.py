"""Versioned, checksummed artifact folders: weights as safetensors, metadata as JSON, never pickle.

A folder holds `weights.safetensors`, `meta.json` and `manifest.json`; the manifest names the artifact kind,
its format version, the sha256 of the other two files, the training-data checksums and the command that
rebuilt it, so a corrupt or mismatched artifact stops start-up with a message naming the file.
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

WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
MANIFEST_FILE = "manifest.json"
CHECKED_FILES = (WEIGHTS_FILE, META_FILE)


class ArtifactError(RuntimeError):
    """An artifact that cannot be used (missing, corrupt, wrong kind or version); message names the file."""


@dataclass(frozen=True)
class Artifact:
    """What `load_artifact` returns: verified arrays, metadata and the manifest."""

    path: Path
    kind: str
    version: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    manifest: dict[str, Any]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # Written to a temp name then renamed so a crash never leaves a half-written JSON file behind.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


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
    from safetensors.numpy import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    contiguous = {name: np.ascontiguousarray(arr) for name, arr in arrays.items()}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_file(contiguous, str(tmp))
    os.replace(tmp, out / WEIGHTS_FILE)
    _write_json(out / META_FILE, meta)
    manifest = {
        "kind": kind,
        "format_version": int(version),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {name: sha256_file(out / name) for name in CHECKED_FILES},
        "training_data": dict(sorted((training_data or {}).items())),
        "command": command or "",
    }
    _write_json(out / MANIFEST_FILE, manifest)
    return out


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: top level must be a JSON object")
    return data


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest alone (no checksum work), e.g. to show what an artifact is."""
    return _read_json(Path(directory) / MANIFEST_FILE)


def _check_header(manifest_path: Path, manifest: dict[str, Any], kind: str, version: int | None) -> int:
    found_kind = manifest.get("kind")
    if found_kind != kind:
        raise ArtifactError(f"{manifest_path}: artifact kind is {found_kind!r}, expected {kind!r}")
    found_version = manifest.get("format_version")
    if not isinstance(found_version, int):
        raise ArtifactError(f"{manifest_path}: format_version missing or not an integer")
    if version is not None and found_version != version:
        raise ArtifactError(
            f"{manifest_path}: {kind} format version {found_version} is not supported (expected {version}); "
            f"rebuild the artifact with the command in its manifest"
        )
    return found_version


def _verify_checksums(folder: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"{folder / MANIFEST_FILE}: 'files' checksums missing")
    for name in CHECKED_FILES:
        path = folder / name
        expected = files.get(name)
        if expected is None:
            raise ArtifactError(f"{folder / MANIFEST_FILE}: no checksum recorded for {name}")
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(f"{path}: sha256 {actual[:12]}… does not match the manifest ({expected[:12]}…)")


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as err:  # safetensors raises several types for a damaged header
        raise ArtifactError(f"{path}: cannot read safetensors ({err})") from None


def load_artifact(directory: str | Path, kind: str, version: int | None = None) -> Artifact:
    """Read and verify an artifact folder: kind, format version (when given) and every file checksum."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: artifact folder not found")
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_json(manifest_path)
    found_version = _check_header(manifest_path, manifest, kind, version)
    _verify_checksums(folder, manifest)
    arrays = _load_weights(folder / WEIGHTS_FILE)
    meta = _read_json(folder / META_FILE)
    return Artifact(folder, kind, found_version, arrays, meta, manifest)


def data_checksum(paths: list[Path], root: Path) -> str:
    """One sha256 over (relative path, file sha256) pairs: names the training data in a manifest."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.relative_to(root).as_posix()}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


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
