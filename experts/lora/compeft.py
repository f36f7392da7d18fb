"""ComPEFT (arXiv 2311.13171) on LoRA matrices: keep the top-D share of entries by magnitude, store signs × one scale.

Per matrix the kept positions are a bitmask over all entries (1 bit each) and the kept entries' signs another
bitmask (1 bit each), so an adapter costs (1 + D) bits per entry instead of 16 (float16): 14.5× at D = 0.1, 8.4×
even at D = 0.9. The scale is the mean magnitude of the kept entries, which is the least-squares scale for fixed
positions and signs (ComPEFT tunes α·σ on validation data instead; we keep it free of tuning data). With
`quantize=False` the kept values themselves are stored (float16 when that is lossless, else float32), so density
1 without quantization is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CompressedMatrix:
    """One matrix: its shape, a packed bitmask of kept entries, packed signs (1 = negative) or raw kept values."""

    shape: tuple[int, ...]
    mask: np.ndarray  # uint8, np.packbits of the kept-entry mask over the flattened matrix
    kept: int
    scale: float  # quantized: every kept entry is ±scale
    signs: np.ndarray | None = None  # uint8, np.packbits of (kept value < 0), in flattened order
    values: np.ndarray | None = None  # not quantized: the kept values, in flattened order

    @property
    def quantized(self) -> bool:
        return self.signs is not None

    @property
    def nbytes(self) -> int:
        extra = self.signs if self.signs is not None else self.values
        return int(self.mask.nbytes + (extra.nbytes if extra is not None else 0) + 4)


def kept_mask(x: np.ndarray, density: float) -> np.ndarray:
    """The ceil(D·n) entries of largest magnitude (exact zeros never kept: a sign of 0 has no meaning)."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    flat = np.abs(np.asarray(x, dtype=np.float32).ravel())
    k = min(flat.size, max(1, math.ceil(density * flat.size)))
    mask = np.zeros(flat.size, dtype=bool)
    if k == flat.size:
        mask[:] = True
    else:
        mask[np.argpartition(-flat, k - 1)[:k]] = True
    return mask & (flat != 0)


def compress_matrix(x: np.ndarray, density: float, quantize: bool = True) -> CompressedMatrix:
    """Sparsify to the top-`density` share by magnitude, then (by default) ternary-quantize to ±scale."""
    arr = np.asarray(x, dtype=np.float32)
    mask = kept_mask(arr, density)
    kept = arr.ravel()[mask]
    packed = np.packbits(mask)
    if not quantize:
        lossless16 = np.array_equal(kept.astype(np.float16).astype(np.float32), kept)
        values = kept.astype(np.float16 if lossless16 else np.float32)
        return CompressedMatrix(arr.shape, packed, int(kept.size), 0.0, values=values)
    scale = float(np.float32(np.abs(kept).mean())) if kept.size else 0.0
    return CompressedMatrix(arr.shape, packed, int(kept.size), scale, signs=np.packbits(kept < 0))


def decompress_matrix(c: CompressedMatrix) -> np.ndarray:
    """The dense float32 matrix: zeros outside the mask, ±scale (or the stored values) inside."""
    n = int(np.prod(c.shape))
    mask = np.unpackbits(c.mask, count=n).view(bool)
    out = np.zeros(n, dtype=np.float32)
    if c.signs is not None:
        negative = np.unpackbits(c.signs, count=c.kept).view(bool)
        out[mask] = np.where(negative, -c.scale, c.scale).astype(np.float32)
    elif c.values is not None:
        out[mask] = c.values.astype(np.float32)
    return out.reshape(c.shape)


def dense_nbytes(weights: dict[str, np.ndarray], dtype: str = "float16") -> int:
    """What the uncompressed adapter takes in `dtype` (the trained experts are stored in float16)."""
    return sum(int(w.size) * np.dtype(dtype).itemsize for w in weights.values())
