"""Disk -> host without mmap: one preallocated (pinned on CUDA) buffer per safetensors file, filled by large
sequential reads, and the tensors as views into it.

mmap plus a copy into private memory costs a page fault per 4 KiB and then a second pass over the bytes (the
README measured 0.41 of a cold read); a plain `readinto` of the whole data section costs what the cold read
costs, and the views need no copy. The buffer is freed when the last tensor viewing it is.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import torch

CHUNK_BYTES = 64 << 20  # large enough that syscalls cost nothing next to the transfer

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64,
}


class SafetensorsFormatError(ValueError):
    """A file that is not a well-formed safetensors file (names the file and what is wrong)."""


def read_header(f: Path, fd: int) -> tuple[dict[str, dict], int]:
    """The tensor table and the byte offset where the data section starts."""
    head = os.pread(fd, 8, 0)
    if len(head) != 8:
        raise SafetensorsFormatError(f"{f}: shorter than a safetensors header")
    (n,) = struct.unpack("<Q", head)
    size = os.fstat(fd).st_size
    if n > size - 8:
        raise SafetensorsFormatError(f"{f}: header length {n} runs past the end of the file ({size} bytes)")
    try:
        table = json.loads(os.pread(fd, n, 8))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SafetensorsFormatError(f"{f}: header is not JSON ({err})") from None
    table.pop("__metadata__", None)
    return table, 8 + n


def read_into(f: Path, fd: int, buf: torch.Tensor, offset: int) -> None:
    """Fill the uint8 `buf` from the file at `offset`, CHUNK_BYTES per read straight into its memory."""
    view = memoryview(buf.numpy().data).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:done + CHUNK_BYTES]], offset + done)
        if got == 0:
            raise SafetensorsFormatError(f"{f}: file ended {len(view) - done} bytes early")
        done += got


def tensor_view(buf: torch.Tensor, name: str, spec: dict, f: Path) -> torch.Tensor:
    """The tensor `spec` describes, as a view of `buf` (a copy only if its offset is misaligned for its dtype)."""
    if spec.get("dtype") not in DTYPES:
        raise SafetensorsFormatError(f"{f}: tensor {name!r} has unknown dtype {spec.get('dtype')!r}")
    dtype = DTYPES[spec["dtype"]]
    start, end = spec["data_offsets"]
    shape = list(spec["shape"])
    if not 0 <= start <= end <= buf.numel():
        raise SafetensorsFormatError(f"{f}: tensor {name!r} lies outside the data section")
    raw = buf[start:end]
    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = 1
    for d in shape:
        numel *= d
    if end - start != numel * itemsize:
        raise SafetensorsFormatError(f"{f}: tensor {name!r} has {end - start} bytes for shape {shape}")
    if start % itemsize:  # writers align tensors; never seen, but a view would be illegal
        raw = raw.clone()
    return raw.view(dtype).reshape(shape)


def read_safetensors(files: Iterable[str | Path], pin: bool | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the files, byte for byte, backed by one private buffer per file (pinned when `pin`, by
    default when CUDA is available, so host -> device copies can be asynchronous)."""
    pin = torch.cuda.is_available() if pin is None else pin
    out: dict[str, torch.Tensor] = {}
    for path in files:
        f = Path(path)
        fd = os.open(f, os.O_RDONLY)
        try:
            table, data_start = read_header(f, fd)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # read-ahead at its largest
            buf = torch.empty(os.fstat(fd).st_size - data_start, dtype=torch.uint8, pin_memory=pin)
            read_into(f, fd, buf, data_start)
        finally:
            os.close(fd)
        for name, spec in table.items():
            out[name] = tensor_view(buf, name, spec, f)
    return out
