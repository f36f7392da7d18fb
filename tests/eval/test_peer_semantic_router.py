"""The semantic-router peer: routes built from training prompts per category, our encoder behind its API."""

import numpy as np
import pytest

from eval.peer_semantic_router import accuracy, build_peer, dense_encoder, timed
from routers.train.datasets import LabelledText

pytest.importorskip("semantic_router")  # the `bench` extra (make install puts it in .venv)
AXES = {"integral": 0, "derivative": 0, "napoleon": 1, "rome": 1, "poem": 2}


class KeywordEncoder:
    """Unit vector on the axis of the first keyword found (a small uniform vector otherwise)."""

    ref = "fake:keywords"

    def encode(self, texts):
        out = np.full((len(texts), 3), 0.1, dtype=np.float32)
        for i, text in enumerate(texts):
            for word, axis in AXES.items():
                if word in text.lower():
                    out[i] = np.eye(3)[axis]
                    break
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def row(text, category, source="mmlu"):
    return LabelledText(id=text, text=text, category=category, source=source, group=category)


def test_dense_encoder_wraps_ours():
    enc = dense_encoder(KeywordEncoder())
    assert enc.name == "fake:keywords"
    assert enc(["an integral", "napoleon"]) == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_peer_routes_to_the_category_of_the_nearest_training_prompts():
    train = [row("solve the integral", "math"), row("a derivative", "math"), row("napoleon's wars", "history"),
             row("fall of rome", "history"), row("write a poem", "writing", "mt_bench")]
    peer = build_peer(KeywordEncoder(), train, ["math", "history", "writing", "law"])  # law: no prompts, no route
    assert sorted(r.name for r in peer.routes) == ["history", "math", "writing"]
    held = [row("integral of x", "math"), row("rome's emperors", "history"),
            row("a poem on rain", "writing", "mt_bench"), row("the derivative of history", "history")]
    preds, seconds = timed(lambda t: peer(t).name, [x.text for x in held])
    assert preds == ["math", "history", "writing", "math"] and len(seconds) == 4
    assert accuracy(preds, held) == 0.75
    assert accuracy(preds, held, "mmlu") == pytest.approx(2 / 3) and accuracy(preds, held, "mt_bench") == 1.0
