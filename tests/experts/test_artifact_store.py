"""The one artifact store: kind and version checks, checksums with a hint, float16 weights, one error type."""

from __future__ import annotations

import numpy as np
import pytest

from experts import artifact_store as store
from experts.embed.adapters import AdapterError
from experts.embed.index import IndexCorruptError
from routers.artifacts import ArtifactError


def sealed(tmp_path, kind="k", version=3):
    folder = tmp_path / "a"
    folder.mkdir()
    store.save_arrays(folder / "w.safetensors", {"x": np.arange(4, dtype=np.float32)}, dtype="float16")
    store.write_json(folder / "m.json", {"b": 1, "a": "é"})
    manifest = store.write_manifest(folder, kind, version, ("w.safetensors", "m.json"), command="make it")
    return folder, manifest


def test_round_trip_keys_by_kind_and_version(tmp_path):
    folder, manifest = sealed(tmp_path)
    assert store.open_artifact(folder, "k", 3, ("w.safetensors", "m.json")) == manifest == store.read_manifest(folder)
    assert manifest["command"] == "make it" and set(manifest["files"]) == {"w.safetensors", "m.json"}
    assert store.load_arrays(folder / "w.safetensors")["x"].dtype == np.float16
    assert (folder / "m.json").read_text() == '{\n  "a": "é",\n  "b": 1\n}\n'  # sorted keys, UTF-8 kept
    assert store.open_artifact(folder, "k", None, ()) == manifest  # any version
    with pytest.raises(ArtifactError, match="artifact kind is 'k', expected 'other'"):
        store.open_artifact(folder, "other", 3, ())
    with pytest.raises(ArtifactError, match="k format version 3 is not supported \\(expected 4\\)"):
        store.open_artifact(folder, "k", 4, ())


def test_a_changed_file_is_named_with_the_hint(tmp_path):
    folder, _ = sealed(tmp_path)
    (folder / "m.json").write_text("{}\n")
    with pytest.raises(ArtifactError, match=r"m\.json: sha256 .* does not match the manifest .*; rebuild it"):
        store.open_artifact(folder, "k", 3, ("w.safetensors", "m.json"), hint="rebuild it")
    with pytest.raises(ArtifactError, match=r"manifest\.json: no checksum recorded for other\.bin"):
        store.open_artifact(folder, "k", 3, ("other.bin",))


def test_one_error_type_under_every_name():
    assert ArtifactError is AdapterError is IndexCorruptError is store.ArtifactError
