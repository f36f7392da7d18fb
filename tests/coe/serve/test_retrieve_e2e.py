"""Routed retrieval through the real Serve app: /v1/retrieve, /v1/embeddings, /v1/corpora, and bad input."""

from __future__ import annotations

import httpx
import pytest

from experts.paths import data_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (data_dir() / "beir" / "scifact").is_dir(), reason="SciFact not in COE_DATA_DIR"),
]
QUERY = "0-dimensional biomaterials show inductive properties."  # SciFact test query 1, judged doc 31715818


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=300)


def test_known_query_finds_its_judged_document(served):
    r = post(served, "/v1/retrieve", {"corpus": "scifact", "query": QUERY, "top_k": 10})
    assert r.status_code == 200, r.text
    item = r.json()["data"][0]
    assert "31715818" in [hit["id"] for hit in item["results"]]
    assert len(item["results"]) == 10 and {"id", "score", "title", "text"} <= set(item["results"][0])
    assert item["coe"]["expert"] and item["timings_ms"]["encode_ms"] >= 0


def test_batch_and_named_expert(served):
    r = post(served, "/v1/retrieve", {"corpus": "scifact", "queries": [QUERY, "vitamin D and bone density"],
                                      "top_k": 3, "expert": "cranfield"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2 and all(d["coe"]["expert"] == "cranfield" for d in data)


def test_embeddings_and_corpora(served):
    r = post(served, "/v1/embeddings", {"model": "coe-retriever", "input": ["a", "b"]})
    assert r.status_code == 200, r.text
    assert [len(d["embedding"]) for d in r.json()["data"]] == [384, 384]
    r = post(served, "/v1/embeddings", {"model": "coe-retriever/cranfield", "input": "a"})
    assert r.status_code == 200 and r.json()["coe"][0]["expert"] == "cranfield"
    corpora = httpx.get(f"{served}/v1/corpora").json()["data"]
    assert [c["name"] for c in corpora] == ["scifact"] and corpora[0]["documents"] == 5183


@pytest.mark.parametrize("body,status,param", [
    ({"corpus": "nope", "query": "x"}, 404, "corpus"),
    ({"corpus": "scifact", "query": "   "}, 400, "queries"),
    ({"corpus": "scifact", "query": "x", "top_k": 0}, 400, "top_k"),
    ({"corpus": "scifact", "query": "x", "top_k": 1001}, 400, "top_k"),
    ({"corpus": "scifact", "query": "x", "queries": ["y"]}, 400, "query"),
    ({"corpus": "scifact", "query": "x", "expert": "nobody"}, 404, "expert"),
    ({"corpus": "nope", "query": "x", "expert": "nobody"}, 404, "corpus"),
])
def test_bad_retrieve_requests(served, body, status, param):
    r = post(served, "/v1/retrieve", body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
    assert post(served, "/v1/retrieve", {"corpus": "scifact", "query": QUERY}).status_code == 200


def test_unknown_embedding_model_is_404(served):
    r = post(served, "/v1/embeddings", {"model": "nope", "input": "x"})
    assert r.status_code == 404, r.text
