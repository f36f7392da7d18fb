"""The sequential-read disk -> host path returns exactly the bytes safetensors' own reader does."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from experts.memory import safetensors_read as sr


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Tensors of many dtypes and shapes, odd sizes included, so offsets are not all multiples of 8."""
    g = torch.Generator().manual_seed(0)
    tensors = {
        "bf16": torch.randn(33, 7, generator=g).to(torch.bfloat16),
        "f32": torch.randn(5, 3, 2, generator=g),
        "f16": torch.randn(3, generator=g).to(torch.float16),
        "f64": torch.randn(2, 2, generator=g).to(torch.float64),
        "i64": torch.arange(-5, 6),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.arange(7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "nan": torch.tensor([float("nan"), float("inf"), -0.0]),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def reference(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt", device="cpu") as sf:
        return {k: sf.get_tensor(k) for k in sf.keys()}  # noqa: SIM118


def as_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def test_tensors_are_byte_identical_to_safetensors(mixed):
    ours, ref = sr.read_safetensors([mixed], pin=False), reference(mixed)
    assert sorted(ours) == sorted(ref)
    for name, t in ref.items():
        assert ours[name].dtype == t.dtype, name
        assert ours[name].shape == t.shape, name
        assert as_bytes(ours[name]) == as_bytes(t), name


def test_tensors_are_views_of_one_private_buffer_not_the_file(mixed):
    ours = sr.read_safetensors([mixed], pin=False)
    storages = {t.untyped_storage().data_ptr() for n, t in ours.items() if n != "empty"}
    assert len(storages) == 1  # one buffer for the file, no per-tensor copies
    before = ours["f32"].clone()
    mixed.write_bytes(b"\0" * mixed.stat().st_size)  # the file changes under us: a read copy does not
    assert torch.equal(ours["f32"], before)


def test_reads_in_chunks_smaller_than_the_file(mixed, monkeypatch):
    monkeypatch.setattr(sr, "CHUNK_BYTES", 5)
    ours, ref = sr.read_safetensors([mixed], pin=False), reference(mixed)
    assert all(as_bytes(ours[n]) == as_bytes(t) for n, t in ref.items())


def test_several_files_merge_into_one_table(tmp_path):
    save_file({"a": torch.ones(3)}, str(tmp_path / "1.safetensors"))
    save_file({"b": torch.full((2,), 2.0)}, str(tmp_path / "2.safetensors"))
    ours = sr.read_safetensors(sorted(tmp_path.glob("*.safetensors")), pin=False)
    assert torch.equal(ours["a"], torch.ones(3)) and torch.equal(ours["b"], torch.full((2,), 2.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_pinned_read_is_pinned_and_identical(mixed):
    ours, ref = sr.read_safetensors([mixed], pin=True), reference(mixed)
    assert all(t.is_pinned() for n, t in ours.items() if t.numel())
    assert all(as_bytes(ours[n]) == as_bytes(t) for n, t in ref.items())


def write_raw(path: Path, header: dict, data: bytes) -> Path:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


@pytest.mark.parametrize(("header", "data", "message"), [
    ({"x": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype 'Q9'"),
    ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "has 8 bytes for shape"),
    ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "outside the data section"),
])
def test_malformed_files_name_the_file_and_the_fault(tmp_path, header, data, message):
    path = write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(sr.SafetensorsFormatError, match=message) as err:
        sr.read_safetensors([path], pin=False)
    assert "bad.safetensors" in str(err.value)


def test_a_header_longer_than_the_file_is_refused(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(sr.SafetensorsFormatError, match="runs past the end"):
        sr.read_safetensors([path], pin=False)
