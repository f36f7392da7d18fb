"""ComPEFT compression of one matrix: kept entries, signs, scale, and the exact (density 1, unquantized) case."""

import math

import numpy as np
import pytest

from experts.lora.compeft import compress_matrix, decompress_matrix, kept_mask


@pytest.mark.parametrize("density", [0.05, 0.1, 0.5, 0.9])
def test_kept_entries_keep_their_sign_and_one_scale(density):
    x = np.random.default_rng(0).normal(size=(16, 96)).astype(np.float32)
    c = compress_matrix(x, density)
    y = decompress_matrix(c)
    k = math.ceil(density * x.size)
    top = np.argsort(-np.abs(x).ravel(), kind="stable")[:k]
    kept = np.zeros(x.size, dtype=bool)
    kept[top] = True
    assert c.kept == k and np.array_equal(y.ravel() != 0, kept)
    assert c.scale == pytest.approx(float(np.abs(x.ravel()[kept]).mean()), rel=1e-6)
    assert np.array_equal(np.sign(y.ravel()[kept]), np.sign(x.ravel()[kept]))
    assert np.all(np.abs(y.ravel()[kept]) == np.float32(c.scale))
    assert np.all(y.ravel()[~kept] == 0)


def test_density_one_without_quantization_is_exact():
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=(8, 40)).astype(np.float32),
              rng.normal(size=(40, 8)).astype(np.float16).astype(np.float32)):
        c = compress_matrix(x, 1.0, quantize=False)
        assert np.array_equal(decompress_matrix(c), x)
    assert compress_matrix(x, 1.0, quantize=False).values.dtype == np.float16  # lossless, so stored half size


def test_zeros_are_never_kept_and_bad_density_is_refused():
    x = np.zeros((4, 4), dtype=np.float32)
    x[0, 0] = -2.0
    assert kept_mask(x, 1.0).sum() == 1
    assert np.array_equal(decompress_matrix(compress_matrix(x, 1.0)), x)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="density"):
            compress_matrix(x, bad)


def test_packed_size_is_one_bit_per_entry_plus_one_per_kept():
    x = np.random.default_rng(2).normal(size=(64, 128)).astype(np.float32)
    c = compress_matrix(x, 0.25)
    assert c.mask.nbytes == x.size // 8 and c.signs.nbytes == math.ceil(c.kept / 8)
