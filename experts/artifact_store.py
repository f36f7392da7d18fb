"""The one on-disk format of everything coe builds: a checksummed folder, keyed by kind and format version.

A folder holds its payload files (arrays as safetensors, metadata as JSON, never pickle) and `manifest.json`:
the artifact `kind`, its `format_version`, the sha256 of every payload file, and whatever the kind records
besides (training-data checksums, the command that rebuilt it, a corpus checksum). Loading checks the kind, the
version and every checksum first, so a corrupt, mismatched or hand-edited artifact stops with a message that
names the file. Router artifacts (routers/artifacts.py), adapters (experts/embed/adapters.py) and corpus
indexes (experts/embed/index.py) are thin layers over this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"


class ArtifactError(RuntimeError):
    """An artifact that cannot be used (missing, corrupt, wrong kind or version); the message names the file."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    """Written to a temp name then renamed, so a crash never leaves a half-written JSON file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, sort_keys=isinstance(data, dict), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None


def read_object(path: Path) -> dict[str, Any]:
    """A JSON file whose top level must be an object (manifests, metas)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: top level must be a JSON object")
    return data


def save_arrays(path: Path, arrays: dict[str, np.ndarray], dtype: str | None = None) -> None:
    """Arrays as safetensors (optionally cast, e.g. float16 to halve a file), written atomically."""
    from safetensors.numpy import save_file

    cast = np.dtype(dtype) if dtype else None
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v, dtype=cast) for k, v in arrays.items()}, str(tmp))
    os.replace(tmp, path)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as err:  # safetensors raises several types for a damaged header
        raise ArtifactError(f"{path}: cannot read safetensors ({err})") from None


def write_manifest(folder: Path, kind: str, version: int, files: Iterable[str], **fields: Any) -> dict[str, Any]:
    """Seal a folder whose payload files are written: kind, version, creation time, checksums, extra fields."""
    manifest = {"kind": kind, "format_version": int(version),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {name: sha256_file(folder / name) for name in files}, **fields}
    write_json(folder / MANIFEST_FILE, manifest)
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest alone (no checksum work), e.g. to show what an artifact is."""
    return read_object(Path(folder) / MANIFEST_FILE)


def check_header(folder: Path, manifest: dict[str, Any], kind: str, version: int | None) -> int:
    """The manifest's kind must be `kind` and its version `version` (any integer when None); returns the version."""
    path = folder / MANIFEST_FILE
    found_kind = manifest.get("kind")
    if found_kind != kind:
        raise ArtifactError(f"{path}: artifact kind is {found_kind!r}, expected {kind!r}")
    found = manifest.get("format_version")
    if not isinstance(found, int):
        raise ArtifactError(f"{path}: format_version missing or not an integer")
    if version is not None and found != version:
        raise ArtifactError(f"{path}: {kind} format version {found} is not supported (expected {version}); "
                            f"rebuild the artifact with the command in its manifest")
    return found


def verify_files(folder: Path, manifest: dict[str, Any], files: Iterable[str], hint: str = "") -> None:
    """Every named file exists and has the sha256 the manifest recorded; `hint` says what to do about it."""
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise ArtifactError(f"{folder / MANIFEST_FILE}: 'files' checksums missing")
    for name in files:
        path = folder / name
        expected = recorded.get(name)
        if expected is None:
            raise ArtifactError(f"{folder / MANIFEST_FILE}: no checksum recorded for {name}")
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(f"{path}: sha256 {actual[:12]}… does not match the manifest ({expected[:12]}…)"
                                + (f"; {hint}" if hint else ""))


def open_artifact(directory: str | Path, kind: str, version: int | None, files: Iterable[str],
                  hint: str = "") -> dict[str, Any]:
    """The verified manifest of a folder: it exists, it is of `kind` and `version`, every file matches."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: artifact folder not found")
    manifest = read_manifest(folder)
    check_header(folder, manifest, kind, version)
    verify_files(folder, manifest, files, hint)
    return manifest


def data_checksum(paths: list[Path], root: Path) -> str:
    """One sha256 over (relative path, file sha256) pairs: names the training data in a manifest."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.relative_to(root).as_posix()}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()
