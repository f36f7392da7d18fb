"""RetrievalService: validation errors, routing to experts, ranked hits; the real SciFact check is slow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coe.retrieval import RetrievalNotFound, RetrievalRequestError, RetrievalService
from coe.retrieval_config import RetrievalConfig
from routers.retriever import PilotRouter

WORDS = ["alpha", "beta", "gamma", "delta"]


class ToyEncoder:
    """Bag-of-words encoder; the `rev` expert reverses word order of the vector (a visibly different encoder)."""

    ref = "toy"

    def __init__(self) -> None:
        self.experts: list[str] = []
        self.dim = len(WORDS)
        self.calls: list[str | None] = []

    def load_expert(self, name: str, path: Path) -> None:
        self.experts.append(name)

    def encode(self, texts: list[str], expert: str | None = None, show_progress: bool = False) -> np.ndarray:
        self.calls.append(expert)
        return self._emb(texts, expert)

    def _emb(self, texts: list[str], expert: str | None) -> np.ndarray:
        emb = np.array([[t.count(w) + 0.01 for w in WORDS] for t in texts], dtype=np.float32)
        if expert == "rev":
            emb = emb[:, ::-1].copy()
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def encode_pair(self, texts: list[str], expert: str) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(f"pair:{expert}")
        return self._emb(texts, None), self._emb(texts, expert)


@pytest.fixture
def service(tmp_path: Path) -> RetrievalService:
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": w}) + "\n" for i, w in enumerate(WORDS)))
    # pilots: "alpha"-like queries go to the plain expert, "delta"-like to rev
    PilotRouter({"plain": np.array([[1.0, 0, 0, 0]]), "rev": np.array([[0, 0, 0, 1.0]])}).save(tmp_path / "router")
    cfg = RetrievalConfig(encoder="toy", experts={"plain": tmp_path / "a", "rev": tmp_path / "b"},
                          router_artifact=tmp_path / "router", corpora={"toy": {"path": str(folder)}},
                          index_dir=tmp_path / "idx")
    return RetrievalService(cfg, encoder=ToyEncoder())  # type: ignore[arg-type]


def test_retrieve_routes_and_ranks(service: RetrievalService) -> None:
    out = service.retrieve("toy", ["alpha", "delta"], top_k=2)
    assert [r.decision.expert for r in out] == ["plain", "rev"]
    assert out[0].hits[0].id == "d0" and out[0].hits[0].title == "T0" and out[0].hits[0].text == "alpha"
    assert out[1].hits[0].id == "d0"  # rev maps "delta" onto the alpha axis
    assert len(out[0].hits) == 2
    assert set(out[0].timings_ms) == {"route_ms", "encode_ms", "search_ms"}
    assert out[0].as_dict()["coe"]["expert"] == "plain"


def test_routed_queries_encode_the_corpus_usual_expert_beside_the_base(service: RetrievalService) -> None:
    service.index("toy")  # the documents are encoded (with the base) when the index is built
    service.encoder.calls.clear()
    first = service.retrieve("toy", ["delta"], 1)[0]  # nothing seen yet: base, then the routed expert
    assert service.encoder.calls == [None, "rev"] and service.guess("toy") == "rev"
    service.encoder.calls.clear()
    again = service.retrieve("toy", ["delta", "delta gamma"], 1)  # guessed right: one pair, nothing else
    assert service.encoder.calls == ["pair:rev"] and service.guesses == {"hit": 2}
    assert [r.hits[0].id for r in again] == [first.hits[0].id, "d0"]
    service.encoder.calls.clear()
    missed = service.retrieve("toy", ["alpha"], 1)[0]  # routed to plain, not the guess: encoded again
    assert service.encoder.calls == ["pair:rev", "plain"] and service.guesses == {"hit": 2, "miss": 1}
    assert missed.decision.expert == "plain" and missed.hits[0].id == "d0"
    service.retrieve("toy", ["delta"], 1, expert="base")  # named experts neither guess nor count
    assert service.guess("toy") == "rev" and service._routed["toy"] == {"rev": 3, "plain": 1}


def test_forced_expert_and_base(service: RetrievalService) -> None:
    assert service.retrieve("toy", ["delta"], 1, expert="base")[0].hits[0].id == "d3"
    forced = service.retrieve("toy", ["delta"], 1, expert="rev")[0]
    assert forced.hits[0].id == "d0" and forced.decision.reason == "requested"


def test_corpora_and_embed(service: RetrievalService) -> None:
    assert service.corpora()[0]["name"] == "toy" and service.corpora()[0]["documents"] is None
    service.retrieve("toy", ["beta"], 1)
    assert service.corpora()[0]["documents"] == 4
    emb, decisions = service.embed(["delta"], "coe-retriever")
    assert decisions[0].expert == "rev"
    np.testing.assert_allclose(emb, ToyEncoder().encode(["delta"], "rev"), atol=1e-6)
    emb, decisions = service.embed(["delta"], "base")
    np.testing.assert_allclose(emb, ToyEncoder().encode(["delta"]), atol=1e-6)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"corpus": "nope"}, RetrievalNotFound, "unknown corpus 'nope'; known: \\['toy'\\]"),
    ({"queries": []}, RetrievalRequestError, "at least one query"),
    ({"queries": ["ok", "  "]}, RetrievalRequestError, "query 1 is empty"),
    ({"top_k": 0}, RetrievalRequestError, "top_k must be in 1..1000, got 0"),
    ({"top_k": 1001}, RetrievalRequestError, "top_k must be in 1..1000, got 1001"),
    ({"expert": "chem"}, RetrievalNotFound, "unknown expert 'chem'"),
])
def test_validation_errors(service: RetrievalService, kwargs: dict, error: type, message: str) -> None:
    args = {"corpus": "toy", "queries": ["alpha"], "top_k": 5, "expert": None, **kwargs}
    with pytest.raises(error, match=message) as info:
        service.retrieve(**args)
    assert info.value.param == {"corpus": "corpus", "queries": "queries", "top_k": "top_k",
                                "expert": "expert"}[next(iter(kwargs))]


def test_unknown_embedding_model(service: RetrievalService) -> None:
    with pytest.raises(RetrievalNotFound, match="unknown expert 'gpt'") as info:
        service.embed(["x"], "gpt")
    assert info.value.param == "model"


def test_config_rejects_reserved_and_bad_names() -> None:
    with pytest.raises(ValueError, match="invalid or reserved names"):
        RetrievalConfig(experts={"coe-retriever": Path("x")})
    with pytest.raises(ValueError, match="router_artifact is set but no experts"):
        RetrievalConfig(experts={})


@pytest.mark.slow
def test_scifact_known_query_finds_its_judged_document() -> None:
    """The real stack (MiniLM, committed adapters and router, SciFact index) on a test query with one judged doc."""
    from coe.commands.retrieval import load_retrieval_config
    from experts.paths import REPO_ROOT, data_dir

    if not (data_dir() / "beir" / "scifact").is_dir():
        pytest.skip("SciFact not in COE_DATA_DIR")
    cfg = load_retrieval_config(REPO_ROOT / "configs" / "retrieval.yaml")
    cfg = cfg.model_copy(update={"corpora": {"scifact": cfg.corpora["scifact"]}})
    service = RetrievalService(cfg)
    query = "0-dimensional biomaterials show inductive properties."  # SciFact test query 1 -> doc 31715818
    for expert in (None, "base", "scifact"):  # routed, base and the in-domain expert (others may miss it)
        result = service.retrieve("scifact", [query], top_k=10, expert=expert)[0]
        assert "31715818" in [h.id for h in result.hits], expert
    routed = service.retrieve("scifact", [query], top_k=10)[0]
    assert routed.decision.expert in service.expert_names()
    if service.router is not None:
        assert set(routed.decision.scores) == set(service.router.experts) and routed.timings_ms["route_ms"] > 0


def test_load_indexes_reports_corpora_whose_data_is_missing(tmp_path) -> None:
    cfg = RetrievalConfig(experts={}, router_artifact=None, corpora={"gone": {"path": str(tmp_path / "nowhere")}},
                          index_dir=tmp_path / "idx")
    missing = RetrievalService(cfg).load_indexes()
    assert list(missing) == ["gone"] and "nowhere" in missing["gone"]


@pytest.mark.parametrize("given,want", [
    ({"dataset": "scifact"}, (30, 200, 2000)),                       # the committed expert recipe
    ({"dataset": "multitask", "pseudo_queries": 0}, (30, 300, 0)),   # the baseline's recipe, judged queries only
    ({"dataset": "cisi", "steps": 50}, (50, 50, 2000)),              # exact steps override the bounds only
])
def test_train_expert_command_starts_from_the_committed_recipe(given: dict, want: tuple) -> None:
    import argparse
    from unittest import mock

    from coe.commands.retrieval import run_train_expert

    args = argparse.Namespace(**{"out": None, "max_steps": None, "pseudo_queries": None, "steps": None,
                                 "pseudo_share": 0.5, "seed": 0, **given})
    with mock.patch("routers.train.retriever.train_retriever_expert") as expert, \
            mock.patch("routers.train.retriever.train_retriever_multitask") as multitask:
        run_train_expert(args)
    cfg = (multitask if given["dataset"] == "multitask" else expert).call_args.kwargs["cfg"]
    assert (cfg.min_steps, cfg.max_steps, cfg.pseudo_queries) == want
