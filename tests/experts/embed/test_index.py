"""Corpus index: round trip, rebuild on a changed corpus or encoder, corrupt files refused, flat vs HNSW."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experts.embed.index import (
    IndexCorruptError,
    build_index,
    load_index,
    load_or_build_index,
    make_index,
)

WORDS = ["alpha", "beta", "gamma", "delta"]


class BagEncoder:
    """Deterministic toy encoder: one-hot-ish bag of known words; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        emb = np.array([[t.count(w) + 0.01 for w in WORDS] for t in texts], dtype=np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.fixture
def corpus(tmp_path: Path, write_dataset) -> Path:  # noqa: ANN001
    docs = {f"d{i}": ("", w) for i, w in enumerate(WORDS)}
    return write_dataset(tmp_path / "toy", docs, {"q": "beta"}, {"test": {"q": {"d1": 1}}})


def test_round_trip_and_search(corpus: Path, tmp_path: Path) -> None:
    enc = BagEncoder()
    built = build_index("toy", corpus, enc, "bag@1", tmp_path / "idx" / "toy")
    loaded = load_index(tmp_path / "idx" / "toy")
    assert loaded.doc_ids == ["d0", "d1", "d2", "d3"] == built.doc_ids
    assert loaded.manifest["index_type"] == "IndexFlatIP"
    assert loaded.manifest["encoder"] == "bag@1"
    scores, ids = loaded.search(enc.encode(["gamma"]), 2)
    assert ids[0][0] == "d2"
    assert scores[0][0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(loaded.embeddings(), enc.encode(WORDS), atol=1e-6)


def test_rebuilt_only_when_corpus_or_encoder_changes(corpus: Path, tmp_path: Path) -> None:
    enc = BagEncoder()
    root = tmp_path / "idx"
    load_or_build_index("toy", corpus, enc, "bag@1", root)
    load_or_build_index("toy", corpus, enc, "bag@1", root)
    assert enc.calls == 1
    with (corpus / "corpus.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "d9", "title": "", "text": "delta delta"}) + "\n")
    rebuilt = load_or_build_index("toy", corpus, enc, "bag@1", root)
    assert enc.calls == 2
    assert rebuilt.doc_ids[-1] == "d9"
    load_or_build_index("toy", corpus, enc, "bag@2", root)
    assert enc.calls == 3


def test_corrupt_index_is_refused(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx" / "toy"
    build_index("toy", corpus, BagEncoder(), "bag@1", folder)
    data = bytearray((folder / "index.faiss").read_bytes())
    data[-5] ^= 0xFF
    (folder / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"index\.faiss: sha256 .* does not match the manifest"):
        load_index(folder)
    with pytest.raises(IndexCorruptError, match=r"index\.faiss: sha256 .* does not match the manifest"):
        load_or_build_index("toy", corpus, BagEncoder(), "bag@1", tmp_path / "idx")


def test_an_index_sealed_before_the_shared_store_still_loads(corpus: Path, tmp_path: Path) -> None:
    """Manifests written before experts/artifact_store.py had no `kind`: they are corpus indexes, still current."""
    enc = BagEncoder()
    root = tmp_path / "idx"
    build_index("toy", corpus, enc, "bag@1", root / "toy")
    manifest = json.loads((root / "toy" / "manifest.json").read_text())
    assert manifest["kind"] == "corpus-index"
    del manifest["kind"]
    (root / "toy" / "manifest.json").write_text(json.dumps(manifest))
    assert load_or_build_index("toy", corpus, enc, "bag@1", root).doc_ids == ["d0", "d1", "d2", "d3"]
    assert enc.calls == 1  # loaded, not rebuilt
    manifest["kind"] = "retriever-adapter"
    (root / "toy" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="artifact kind is 'retriever-adapter', expected 'corpus-index'"):
        load_index(root / "toy")


def test_hnsw_above_the_flat_limit() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert type(make_index(emb, flat_limit=1000)).__name__ == "IndexFlatIP"
    hnsw = make_index(emb, flat_limit=100)
    assert type(hnsw).__name__ == "IndexHNSWFlat"
    _, rows = hnsw.search(emb[:5], 1)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
