"""Artifact folders: exact round trip; refusal naming the file on corruption or kind/version mismatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routers.artifacts import ArtifactError, load_artifact, read_manifest, save_artifact, sha256_file


@pytest.fixture
def saved(tmp_path):
    arrays = {"W": np.arange(12, dtype=np.float32).reshape(4, 3), "b": np.array([0.5, -1.0, 2.0], np.float32)}
    meta = {"categories": ["a", "b", "c"], "temperature": 1.25}
    path = save_artifact(
        tmp_path / "art", "coe-router", 1, arrays, meta, training_data={"mmlu": "abc"}, command="coe train x"
    )
    return path, arrays, meta


def test_round_trip_is_exact(saved):
    path, arrays, meta = saved
    art = load_artifact(path, "coe-router", 1)
    assert sorted(art.arrays) == ["W", "b"]
    for name, arr in arrays.items():
        assert art.arrays[name].dtype == arr.dtype
        np.testing.assert_array_equal(art.arrays[name], arr)
    assert art.meta == meta
    assert art.version == 1
    manifest = read_manifest(path)
    assert manifest["kind"] == "coe-router" and manifest["format_version"] == 1
    assert manifest["command"] == "coe train x" and manifest["training_data"] == {"mmlu": "abc"}
    assert manifest["files"] == {
        "weights.safetensors": sha256_file(path / "weights.safetensors"),
        "meta.json": sha256_file(path / "meta.json"),
    }
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "meta.json", "weights.safetensors"]


def test_changed_weight_byte_is_refused(saved):
    path = saved[0]
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # inside the tensor data, so the file still parses: only the checksum catches it
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: sha256 .* does not match the manifest"):
        load_artifact(path, "coe-router", 1)


def test_edited_meta_is_refused(saved):
    path = saved[0]
    meta = json.loads((path / "meta.json").read_text())
    meta["temperature"] = 9.0
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"meta\.json: sha256"):
        load_artifact(path, "coe-router")


def test_kind_and_version_mismatch_refused(saved):
    path = saved[0]
    with pytest.raises(ArtifactError, match=r"manifest\.json: artifact kind is 'coe-router', expected 'pilots'"):
        load_artifact(path, "pilots")
    with pytest.raises(ArtifactError, match="format version 1 is not supported \\(expected 2\\)"):
        load_artifact(path, "coe-router", 2)


def test_missing_and_garbled_files(saved, tmp_path):
    path = saved[0]
    with pytest.raises(ArtifactError, match="artifact folder not found"):
        load_artifact(tmp_path / "nope", "coe-router")
    (path / "meta.json").unlink()
    with pytest.raises(ArtifactError, match=r"meta\.json: missing"):
        load_artifact(path, "coe-router")
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest\.json: not valid JSON"):
        load_artifact(path, "coe-router")
