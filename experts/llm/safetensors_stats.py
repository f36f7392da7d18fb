"""Parameter count and weight bytes of a safetensors folder, read from file headers (no tensors loaded)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path


def read_header(path: Path) -> dict[str, dict]:
    """The tensor table of one safetensors file (its JSON header, without __metadata__)."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header


def safetensors_stats(folder: str | Path) -> tuple[int, int]:
    """(params, nbytes) summed over every tensor of every *.safetensors file; (0, 0) if not a local folder."""
    root = Path(folder)
    if not root.is_dir():
        return 0, 0
    params = nbytes = 0
    for file in sorted(root.glob("*.safetensors")):
        for entry in read_header(file).values():
            start, end = entry["data_offsets"]
            params += math.prod(entry["shape"])
            nbytes += end - start
    return params, nbytes
