"""GLIDER request routing: the combination formula by hand, the α limits, the instruction cache, the artifact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from routers.base import RouteInput
from routers.coe import CoERouter
from routers.glider import (
    LOG_FLOOR,
    GliderRouter,
    GlobalScorer,
    InstructionCache,
    combine,
    load_global_scorer,
    local_scores,
)
from routers.train.glider import BackendWriter, build_glider_artifact, instruction_request

CATS = ["a", "b", "c"]
MAP = {"a": "e1", "b": "e1", "c": "e2"}
EXPERTS = ["e1", "e2", "e3"]


class AxisEncoder:
    """Text 'x0.5 y0.1 z0.9' -> the normalised vector (0.5, 0.1, 0.9); counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = [[float(tok[1:]) for tok in t.split()[:3]] for t in texts]
        arr = np.asarray(rows, dtype=np.float32)
        return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def coe_router(encoder=None) -> CoERouter:
    # Identity classifier over 3-d embeddings at T=1: π = softmax(embedding).
    return CoERouter(encoder, np.eye(3), np.zeros(3), CATS, 1.0, MAP, "e1", tau_entropy=10.0)


def test_local_scores_sum_mapped_mass_then_log():
    s = local_scores(np.array([[0.5, 0.2, 0.3]]), CATS, MAP, EXPERTS)
    assert s[0] == pytest.approx([math.log(0.7), math.log(0.3), math.log(LOG_FLOOR)], abs=1e-12)


def test_combine_matches_hand_computation():
    s = np.log([0.7, 0.3, LOG_FLOOR])
    g = np.array([0.1, 0.5, 0.9])
    c = combine(s, g, alpha=2.0, top_k=2)
    x = [0.7 * math.exp(0.2), 0.3 * math.exp(1.0), LOG_FLOOR * math.exp(1.8)]
    p = [v / sum(x) for v in x]
    assert c.probs == pytest.approx(p, abs=1e-12)
    assert c.logits == pytest.approx([math.log(0.7) + 0.2, math.log(0.3) + 1.0, math.log(LOG_FLOOR) + 1.8])
    assert list(c.weights) == [0, 1]  # 0.7·e^0.2 ≈ 0.855 > 0.3·e ≈ 0.815 > 1e-6·e^1.8
    assert c.weights[1] == pytest.approx(p[1] / (p[0] + p[1]), abs=1e-12)
    assert c.weights[0] == pytest.approx(p[0] / (p[0] + p[1]), abs=1e-12)


def test_alpha_zero_is_local_only_and_large_alpha_global_only():
    s = np.log([0.7, 0.3, LOG_FLOOR])
    g = np.array([0.1, 0.5, 0.9])
    local = combine(s, g, alpha=0.0, top_k=3)
    assert local.probs == pytest.approx(np.array([0.7, 0.3, LOG_FLOOR]) / (1 + LOG_FLOOR), abs=1e-12)
    assert next(iter(local.weights)) == 0
    glob = combine(s, g, alpha=200.0, top_k=1)
    assert glob.weights == {2: 1.0}  # the expert with no category mass but the best instruction match


def test_top_k_one_gives_the_top_expert_with_weight_one():
    c = combine(np.log([0.2, 0.5, 0.3]), np.zeros(3), alpha=1.0, top_k=1)
    assert c.weights == {1: 1.0}


def test_router_alpha_limits_through_route():
    enc = AxisEncoder()
    # Instructions: e1 ~ x, e2 ~ y, e3 ~ z; e3 has no category, so only the global score can pick it.
    scorer = GlobalScorer(EXPERTS, {e: e for e in EXPERTS}, np.eye(3), enc)
    prompt = [RouteInput("x3 y0 z2")]
    local_only = GliderRouter(coe_router(enc), scorer, alpha=0.0, top_k=2).route(prompt)[0]
    assert local_only.expert == "e1"
    emb = np.array([3, 0, 2]) / math.sqrt(13)
    pi = np.exp(emb) / np.exp(emb).sum()
    assert local_only.scores["e1"] == pytest.approx(round(pi[0] + pi[1], 4))
    assert local_only.weights == pytest.approx({"e1": round((pi[0] + pi[1]) / (1 + LOG_FLOOR), 4),
                                                "e2": round(pi[2] / (1 + LOG_FLOOR), 4)}, abs=1e-4)
    global_only = GliderRouter(coe_router(enc), scorer, alpha=100.0, top_k=1).route(prompt)[0]
    assert global_only.expert == "e1"  # cos with x (0.83) beats z (0.55) too
    towards_z = [RouteInput("x1 y1 z2")]  # π(a)+π(b) ≈ 0.57 -> e1 locally; closest instruction: z (e3)
    assert GliderRouter(coe_router(enc), scorer, alpha=0.0).route(towards_z)[0].expert == "e1"
    decided = GliderRouter(coe_router(enc), scorer, alpha=100.0).route(towards_z)[0]
    assert decided.expert == "e3" and decided.weights == {"e3": 1.0}
    assert decided.category == "c" and decided.reason.startswith("glider: alpha=100")


def test_instruction_cache_hits_for_a_repeated_task():
    enc = AxisEncoder()
    written: list[list[str]] = []

    def writer(examples: list[str]) -> str:
        written.append(examples)
        return "x0 y1 z0" if "y9" in examples[0] else "x0 y0 z1"

    scorer = GlobalScorer(EXPERTS, {e: e for e in EXPERTS}, np.eye(3), enc, mode="llm", writer=writer)
    router = GliderRouter(coe_router(enc), scorer, alpha=100.0)
    inputs = [RouteInput("x1 y9 z0", task_hint="t1"), RouteInput("x1 y0 z9", task_hint="t1"),
              RouteInput("x1 y0 z9", task_hint="t2")]
    decisions = router.route(inputs)
    assert [d.expert for d in decisions] == ["e2", "e2", "e3"]  # t1's cached instruction serves its 2nd prompt
    assert written == [["x1 y9 z0"], ["x1 y0 z9"]]
    assert (scorer.cache.hits, scorer.cache.misses, len(scorer.cache)) == (1, 2, 2)
    router.route([RouteInput("x0 y0 z1", task_hint="t2")])
    assert (scorer.cache.hits, scorer.cache.misses) == (2, 2)
    assert router.stats() == {"instruction_cache": {"hits": 2, "misses": 2, "size": 2}}
    assert {d.kind for d in decisions} == {"routed"}


def test_a_writer_without_an_instruction_scores_the_prompt_and_caches_nothing():
    enc = AxisEncoder()
    answers = iter([None, "x0 y1 z0"])
    scorer = GlobalScorer(EXPERTS, {e: e for e in EXPERTS}, np.eye(3), enc, mode="llm",
                          writer=lambda examples: next(answers))
    router = GliderRouter(coe_router(enc), scorer, alpha=100.0)
    assert router.route([RouteInput("x0 y0 z9", task_hint="t")])[0].expert == "e3"  # the prompt itself as q
    assert len(scorer.cache) == 0
    assert router.route([RouteInput("x0 y0 z9", task_hint="t")])[0].expert == "e2"  # asked again: written now
    assert len(scorer.cache) == 1


def test_instruction_cache_evicts_least_recently_used():
    cache = InstructionCache(capacity=2)
    for key in ["a", "b"]:
        cache.put(key, key, np.zeros(1))
    assert cache.get("a") is not None  # "b" is now the oldest
    cache.put("c", "c", np.zeros(1))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert (cache.hits, cache.misses) == (3, 1)


def test_llm_mode_needs_a_writer():
    with pytest.raises(ValueError, match="needs an instruction writer"):
        GlobalScorer(EXPERTS, {}, np.eye(3), None, mode="llm")


class FakeBackend:
    """Streams a fixed answer; records the request it got."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests = []

    async def generate(self, request):
        self.requests.append(request)
        for word in self.answer.split(" "):
            yield type("C", (), {"text": word + " "})()


def test_artifact_round_trip_keeps_editable_instruction_texts(tmp_path):
    backend = FakeBackend("x1 y0 z0\n\nignored")
    examples = {"e2": ["q2"], "e1": ["q1a", "q1b"]}
    meta = build_glider_artifact(examples, BackendWriter(backend), AxisEncoder(), tmp_path / "g", writer_model="fake")
    assert meta["experts"] == ["e1", "e2"]
    saved = json.loads((tmp_path / "g" / "meta.json").read_text())
    assert saved["instructions"] == {"e1": "x1 y0 z0 ignored", "e2": "x1 y0 z0 ignored"}
    assert backend.requests[0] == instruction_request(["q1a", "q1b"])
    assert backend.requests[0].stop == ("\n\n",) and "Example 2: q1b" in backend.requests[0].messages[1].content
    scorer = load_global_scorer(tmp_path / "g", AxisEncoder(), aliases={"e1": "one"})
    assert scorer.experts == ["one", "e2"] and scorer.instructions["one"] == "x1 y0 z0 ignored"
    assert scorer.scores(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx([1.0, 1.0])


def test_decision_dict_shows_a_mixture_only():
    from routers.base import RouteDecision

    single = RouteDecision("e1", "a", 0.9, "r", weights={"e1": 1.0})
    assert "weights" not in single.as_dict()
    mixed = RouteDecision("e1", "a", 0.6, "r", weights={"e1": 0.612345, "e2": 0.387655})
    assert mixed.as_dict()["weights"] == {"e1": 0.6123, "e2": 0.3877}
