"""Mean pooling over the attention mask, then L2 norm: what sentence-transformers' MiniLM computes."""

import numpy as np

from experts.embed.onnx_encoder import mean_pool


def test_mean_pool_ignores_padding_and_normalises():
    hidden = np.array([[[3.0, 0.0], [0.0, 4.0], [100.0, 100.0]],
                       [[1.0, 1.0], [9.0, 9.0], [9.0, 9.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    out = mean_pool(hidden, mask)
    np.testing.assert_allclose(out, [[0.6, 0.8], [2 ** -0.5, 2 ** -0.5]], rtol=1e-6)
    assert out.dtype == np.float32
