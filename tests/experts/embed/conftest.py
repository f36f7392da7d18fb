"""Fixtures for the embedding/retrieval tests: tiny BEIR folders written on the fly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


def _write_dataset(root: Path, docs: dict[str, tuple[str, str]], queries: dict[str, str],
                  qrels: dict[str, dict[str, dict[str, int]]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in docs.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (root / "qrels").mkdir(exist_ok=True)
    for split, rel in qrels.items():
        rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, ds in rel.items() for d, s in ds.items()]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root



@pytest.fixture
def write_dataset() -> Callable[..., Path]:
    """Writes corpus.jsonl, queries.jsonl and qrels/<split>.tsv into a folder."""
    return _write_dataset
