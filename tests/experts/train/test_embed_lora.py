"""Query-adapter training on a tiny real corpus: the loss falls, the adapter ranks the judged documents higher,
documents and the base encoder are untouched, and the step count follows the configured epochs and bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experts.embed.beir import load_split
from experts.embed.index import load_or_build_index
from experts.embed.query_encoder import ExpertQueryEncoder, encoder_id
from experts.train.embed_lora import LoraTrainConfig, TrainingSet, train_query_adapter
from tests.experts.embed.conftest import _write_dataset

pytestmark = pytest.mark.slow  # real MiniLM, ~40 optimizer steps on a 2-core box

# Queries name a code word that the base encoder cannot relate to the topic of the judged document.
TOPICS = ["wing flutter at supersonic speed", "protein folding in yeast cells", "library catalogue indexing",
          "semiconductor band gap measurement", "heart rate variability in athletes", "compiler register allocation",
          "soil erosion on farmland", "volcanic ash in the atmosphere"]
CODES = ["zorbex", "quilmar", "tessaly", "vornic", "plimsek", "draxol", "hembrit", "oskuna"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = {f"d{i}": (t.title(), f"A study of {t}.") for i, t in enumerate(TOPICS)}
    queries = {f"q{i}": f"what is known about {c}" for i, c in enumerate(CODES)}
    qrels = {"train": {f"q{i}": {f"d{i}": 1} for i in range(len(TOPICS))}}
    return _write_dataset(tmp_path_factory.mktemp("tiny") / "tiny", docs, queries, qrels)


def _mean_rank(encoder: ExpertQueryEncoder, index, split, expert: str | None) -> float:
    qids = sorted(split.queries)
    _, ids = index.search(encoder.encode([split.queries[q] for q in qids], expert), len(index.doc_ids))
    return float(np.mean([list(row).index(next(iter(split.qrels[q]))) for q, row in zip(qids, ids, strict=True)]))


def test_training_lowers_the_loss_and_ranks_the_judged_documents_higher(tiny: Path, tmp_path: Path) -> None:
    encoder = ExpertQueryEncoder()
    split = load_split(tiny, "train", name="tiny")
    index = load_or_build_index("tiny", tiny, encoder, encoder_id(encoder.ref), tmp_path / "indexes")
    documents_before = index.embeddings().copy()
    base_before = encoder.encode(list(split.queries.values()))
    cfg = LoraTrainConfig(batch_size=8, epochs=1000, min_steps=10, max_steps=40, lr=3e-3, hard_negatives=False)
    report = train_query_adapter("tiny", [TrainingSet(split, index)], encoder, cfg)
    assert report["steps"] == 40  # 1000 epochs x 8 pairs / 8 per batch, clipped to max_steps
    assert report["loss_last"] < 0.5 * report["loss_first"]
    assert _mean_rank(encoder, index, split, "tiny") < _mean_rank(encoder, index, split, None)
    np.testing.assert_allclose(encoder.encode(list(split.queries.values())), base_before, atol=1e-6)
    np.testing.assert_array_equal(index.embeddings(), documents_before)


def test_pseudo_queries_join_training_and_keep_the_judged_queries_epochs(tiny: Path, tmp_path: Path) -> None:
    encoder = ExpertQueryEncoder()
    split = load_split(tiny, "train", name="tiny")
    index = load_or_build_index("tiny", tiny, encoder, encoder_id(encoder.ref), tmp_path / "indexes")
    cfg = LoraTrainConfig(batch_size=4, epochs=1, min_steps=1, max_steps=100, hard_negatives=False,
                          pseudo_queries=5, pseudo_share=0.5)
    report = train_query_adapter("tiny", [TrainingSet(split, index)], encoder, cfg)
    assert report["pseudo_queries"] == 5  # every document has a title and a body long enough to cut from
    assert report["steps"] == 4  # 1 epoch x 8 judged pairs / 4 per batch, doubled because half the batches are pseudo
