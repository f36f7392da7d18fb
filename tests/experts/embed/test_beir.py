"""BEIR loader: reads the layout, names file and line of a malformed entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from experts.embed.beir import BeirFormatError, load_corpus, load_qrels, load_split


@pytest.fixture
def tiny(tmp_path: Path, write_dataset) -> Path:  # noqa: ANN001
    return write_dataset(tmp_path / "tiny", {"d1": ("Title", "alpha"), "d2": ("", "beta")},
                         {"q1": "alpha?", "q2": "beta?", "q3": "unjudged"},
                         {"test": {"q1": {"d1": 2}, "q2": {"d2": 1}}, "train": {"q1": {"d2": 1}}})


def test_load_split_keeps_only_judged_queries(tiny: Path) -> None:
    split = load_split(tiny, "test")
    assert split.name == "tiny"
    assert split.queries == {"q1": "alpha?", "q2": "beta?"}
    assert split.qrels == {"q1": {"d1": 2}, "q2": {"d2": 1}}
    assert split.corpus["d1"].full_text() == "Title alpha"
    assert split.corpus["d2"].full_text() == "beta"


def test_malformed_json_line_is_named(tiny: Path) -> None:
    with (tiny / "corpus.jsonl").open("a") as fh:
        fh.write('{"_id": "d3", "text": \n')
    with pytest.raises(BeirFormatError, match=r"corpus\.jsonl:3: not valid JSON"):
        load_corpus(tiny)


def test_missing_text_field_is_named(tiny: Path) -> None:
    (tiny / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{"_id": "q2"}\n')
    with pytest.raises(BeirFormatError, match=r"queries\.jsonl:2: field 'text' missing"):
        load_split(tiny, "test")


def test_bad_qrels_row_is_named(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tx\n")
    with pytest.raises(BeirFormatError, match=r"test\.tsv:2: score 'x' is not an integer"):
        load_qrels(tiny, "test")
    (tiny / "qrels" / "test.tsv").write_text("q1\td1\n")
    with pytest.raises(BeirFormatError, match=r"test\.tsv:1: expected 3 tab-separated columns, got 2"):
        load_qrels(tiny, "test")


def test_qrels_naming_unknown_document_is_refused(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text("q1\tnope\t1\n")
    with pytest.raises(BeirFormatError, match=r"document ids not in corpus\.jsonl: \['nope'\]"):
        load_split(tiny, "test")


def test_missing_split_lists_available(tiny: Path) -> None:
    with pytest.raises(BeirFormatError, match=r"dev\.tsv: file not found \(splits here: \['test', 'train'\]\)"):
        load_qrels(tiny, "dev")


def test_duplicate_document_id_is_refused(tiny: Path) -> None:
    with (tiny / "corpus.jsonl").open("a") as fh:
        fh.write('{"_id": "d1", "text": "again"}\n')
    with pytest.raises(BeirFormatError, match=r"corpus\.jsonl:3: duplicate document id 'd1'"):
        load_corpus(tiny)
