"""The model2vec backend: a prompt is the normalised mean of its token vectors (a tiny model written here)."""

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from experts.embed.static_encoder import StaticEncoder


def tiny_model(folder):
    from model2vec import StaticModel

    vocab = {"[UNK]": 0, "math": 1, "history": 2, "rome": 3}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    vectors = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 2]], dtype=np.float32)
    StaticModel(vectors, tok, normalize=False).save_pretrained(str(folder))
    return folder


def test_static_encoder_means_and_normalises(tmp_path):
    enc = StaticEncoder("model2vec:tiny", tiny_model(tmp_path / "m"))
    out = enc.encode(["math", "history rome", "math rome"])
    assert enc.dim == 3 and out.dtype == np.float32
    np.testing.assert_allclose(out, [[1, 0, 0], [0, 2 ** -0.5, 2 ** -0.5], [1 / 5 ** 0.5, 0, 2 / 5 ** 0.5]],
                               rtol=1e-5)
    assert enc.encode([]).shape == (0, 3)
