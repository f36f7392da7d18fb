"""CoERouter math on crafted logits: fallback rules, map lookup, unmapped categories, artifact loading."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routers.artifacts import ArtifactError, save_artifact
from routers.base import RouteDecision, RouteInput
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION, CoERouter, entropy, softmax

CATS = ["math", "history", "writing"]
MAP = {"math": "qwen2.5-coder-0.5b", "history": "gemma3-270m"}  # writing is deliberately unmapped
KEYWORDS = {"integral": 0, "napoleon": 1, "poem": 2}


class FakeEncoder:
    """Deterministic stand-in for MiniLM: 4 on the axis of the first keyword found, zeros otherwise."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for i, text in enumerate(texts):
            for word, axis in KEYWORDS.items():
                if word in text.lower():
                    out[i, axis] = 4.0
                    break
        return out


def make_router(tau: float = 1.0, temperature: float = 1.0, min_conf: float | None = None, enc=None) -> CoERouter:
    return CoERouter(enc, np.eye(3), np.zeros(3), CATS, temperature, MAP, "smollm2-135m", tau, min_conf)


def test_softmax_and_entropy_exact():
    p = softmax(np.array([[0.0, 0.0, 0.0], [1000.0, 0.0, 0.0]]))
    np.testing.assert_allclose(p[0], [1 / 3] * 3)
    np.testing.assert_allclose(p[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(entropy(p), [math.log(3), 0.0], atol=1e-12)
    np.testing.assert_allclose(softmax(np.array([[2.0, 0.0]]), temperature=2.0), softmax(np.array([[1.0, 0.0]])))


def test_confident_row_goes_to_mapped_expert():
    (d,) = make_router().route_embeddings(np.array([[4.0, 0.0, 0.0]]))
    p = math.exp(4) / (math.exp(4) + 2)
    assert d.expert == "qwen2.5-coder-0.5b"
    assert d.category == "math"
    assert d.confidence == pytest.approx(p)
    assert d.reason == f"category=math p={p:.2f}" == "category=math p=0.96"
    assert list(d.scores) == ["math", "history", "writing"]
    assert d.weights == {"qwen2.5-coder-0.5b": 1.0}
    assert d.kind == "routed"


def test_uniform_row_falls_back_on_entropy():
    (d,) = make_router(tau=1.0).route_embeddings(np.zeros((1, 3)))
    assert d.expert == "smollm2-135m"
    assert d.category is None
    assert d.reason == "fallback: entropy 1.10 > 1.00"
    assert d.kind == "fallback"  # the metric label comes from here, not from parsing the reason
    assert d.confidence == pytest.approx(1 / 3)


def test_entropy_threshold_is_strict_and_temperature_flattens():
    row = np.array([[1.0, 0.0, 0.0]])
    h = float(entropy(softmax(row))[0])
    assert make_router(tau=h).route_embeddings(row)[0].expert == "qwen2.5-coder-0.5b"  # H == τ is not > τ
    assert make_router(tau=h - 1e-9).route_embeddings(row)[0].expert == "smollm2-135m"
    # T = 10 makes the same logits nearly uniform, so a τ that let T = 1 through now falls back.
    assert make_router(tau=1.0, temperature=1.0).route_embeddings(row)[0].category == "math"
    assert make_router(tau=1.0, temperature=10.0).route_embeddings(row)[0].category is None


def test_min_confidence_fallback():
    row = np.array([[1.0, 0.0, 0.0]])  # p(math) = e / (e + 2) = 0.576
    (d,) = make_router(tau=5.0, min_conf=0.6).route_embeddings(row)
    assert (d.expert, d.category, d.reason, d.kind) == ("smollm2-135m", None, "fallback: max p 0.58 < 0.60",
                                                        "fallback")
    assert make_router(tau=5.0, min_conf=0.5).route_embeddings(row)[0].expert == "qwen2.5-coder-0.5b"


def test_unmapped_category_goes_to_general_expert_with_reason():
    (d,) = make_router().route_embeddings(np.array([[0.0, 0.0, 4.0]]))
    assert d.expert == "smollm2-135m"
    assert d.category == "writing"
    assert d.reason == "category=writing p=0.96 has no expert in the map: general expert"
    assert d.kind == "routed"  # the classifier was sure: the map sends it to the general expert (as before)


def test_route_batches_through_encoder_once():
    enc = FakeEncoder()
    router = make_router(enc=enc)
    texts = ["Compute the integral of x", "When did Napoleon die?", "Write a poem", "hello"]
    decisions = router.route([RouteInput(t) for t in texts])
    assert enc.calls == [texts]
    assert [d.expert for d in decisions] == [
        "qwen2.5-coder-0.5b",
        "gemma3-270m",
        "smollm2-135m",
        "smollm2-135m",
    ]
    assert [d.category for d in decisions] == ["math", "history", "writing", None]
    assert router.route([]) == []


def test_constructor_rejects_bad_inputs():
    with pytest.raises(ValueError, match="does not know: \\['chemistry'\\]"):
        CoERouter(None, np.eye(3), np.zeros(3), CATS, 1.0, {"chemistry": "x"}, "g", 1.0)
    with pytest.raises(ValueError, match="shapes"):
        CoERouter(None, np.eye(3)[:, :2], np.zeros(3), CATS, 1.0, {}, "g", 1.0)
    with pytest.raises(ValueError, match="temperature"):
        CoERouter(None, np.eye(3), np.zeros(3), CATS, 0.0, {}, "g", 1.0)
    with pytest.raises(ValueError, match=r"shape \[n, 3\]"):
        make_router().route_embeddings(np.zeros((1, 4)))
    with pytest.raises(RuntimeError, match="encoder"):
        make_router().route([RouteInput("x")])


def _save(tmp_path, **meta_updates):
    meta = {
        "categories": CATS,
        "temperature": 1.0,
        "tau_entropy": 1.0,
        "min_confidence": None,
        "category_map": MAP,
        "general_expert": "smollm2-135m",
    }
    meta.update(meta_updates)
    arrays = {"W": np.eye(3, dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}
    return save_artifact(tmp_path / "coe", ARTIFACT_KIND, ARTIFACT_VERSION, arrays, meta)


def test_from_artifact_and_overrides(tmp_path):
    path = _save(tmp_path)
    router = CoERouter.from_artifact(path, FakeEncoder())
    assert router.categories == CATS and router.category_map == MAP and router.tau_entropy == 1.0
    assert router.experts == {"qwen2.5-coder-0.5b", "gemma3-270m", "smollm2-135m"}
    over = CoERouter.from_artifact(
        path,
        FakeEncoder(),
        general_expert="big",
        category_map_override={"writing": "writer"},
        tau_override=0.5,
    )
    assert over.general_expert == "big" and over.tau_entropy == 0.5
    assert over.category_map == {**MAP, "writing": "writer"}
    assert over.route([RouteInput("a poem")])[0].expert == "writer"
    assert over.route([RouteInput("hello")])[0].expert == "big"


def test_from_artifact_refuses_other_kinds_and_missing_fields(tmp_path):
    path = save_artifact(tmp_path / "other", "glider-router", 1, {"W": np.eye(2)}, {})
    with pytest.raises(ArtifactError, match="kind is 'glider-router'"):
        CoERouter.from_artifact(path, None)
    with pytest.raises(ValueError, match="lacks 'general_expert'"):
        CoERouter.from_artifact(_artifact_without_general(tmp_path), None)


def _artifact_without_general(tmp_path):
    arrays = {"W": np.eye(3, dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}
    meta = {"categories": CATS, "temperature": 1.0, "tau_entropy": 1.0}
    return save_artifact(tmp_path / "nogeneral", ARTIFACT_KIND, ARTIFACT_VERSION, arrays, meta)


class RefEncoder(FakeEncoder):
    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref


def test_artifact_refuses_an_encoder_it_was_not_trained_with(tmp_path):
    path = _save(tmp_path, encoder="onnx-int8:all-minilm-l6-v2")
    router = CoERouter.from_artifact(path, RefEncoder("onnx-int8:all-minilm-l6-v2"))
    assert router.route([RouteInput("an integral")])[0].category == "math"
    with pytest.raises(ArtifactError, match=r"trained with encoder 'onnx-int8:all-minilm-l6-v2', but the router is "
                                            r"given 'registry:all-minilm-l6-v2'; set router.encoder"):
        CoERouter.from_artifact(path, RefEncoder("registry:all-minilm-l6-v2"))


def test_a_decision_is_routed_unless_it_says_otherwise_and_kind_stays_out_of_the_body():
    d = RouteDecision("e", "c", 0.5, "category=c p=0.50")
    assert d.kind == "routed"
    assert "kind" not in d.as_dict()  # the client's `coe` object keeps its fields
    assert make_router().stats() == {}


def test_artifact_of_a_shallow_encoder_refuses_the_full_one(tmp_path):
    """The first-4-layers encoder embeds into another space than the full MiniLM: its artifact refuses that one."""
    path = _save(tmp_path, encoder="onnx-fused-int8-l4:all-minilm-l6-v2")
    assert CoERouter.from_artifact(path, RefEncoder("onnx-fused-int8-l4:all-minilm-l6-v2")).encoder is not None
    with pytest.raises(ArtifactError, match=r"trained with encoder 'onnx-fused-int8-l4:all-minilm-l6-v2', but the "
                                            r"router is given 'onnx-int8:all-minilm-l6-v2'"):
        CoERouter.from_artifact(path, RefEncoder("onnx-int8:all-minilm-l6-v2"))
