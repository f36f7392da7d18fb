"""Reads a folder in BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); a bad line is named, not skipped."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_DIR = "qrels"


class BeirFormatError(ValueError):
    """A BEIR file that cannot be read; the message names the file and the line."""


class BeirFileMissing(BeirFormatError, FileNotFoundError):
    """A BEIR file that is not there: a dataset absent from this machine (the server answers it with 404)."""


@dataclass(frozen=True)
class Document:
    title: str
    text: str

    def full_text(self) -> str:
        """Title and body joined the way BEIR's dense retrievers encode a document."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True)
class BeirSplit:
    """One split of one dataset: only the queries its qrels judge."""

    name: str
    folder: Path
    split: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _json_lines(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise BeirFileMissing(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise BeirFormatError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise BeirFormatError(f"{path}:{lineno}: expected a JSON object")
            rows.append((lineno, obj))
    return rows


def _field(path: Path, lineno: int, obj: dict, key: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BeirFormatError(f"{path}:{lineno}: field {key!r} missing or not a string")
    return str(value)


def load_corpus(folder: str | Path) -> dict[str, Document]:
    """Document id → Document; duplicate ids are an error (they would make qrels ambiguous)."""
    path = Path(folder) / CORPUS_FILE
    corpus: dict[str, Document] = {}
    for lineno, obj in _json_lines(path):
        doc_id = _field(path, lineno, obj, "_id")
        if doc_id in corpus:
            raise BeirFormatError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
        corpus[doc_id] = Document(_field(path, lineno, obj, "title", False), _field(path, lineno, obj, "text"))
    return corpus


def load_queries(folder: str | Path) -> dict[str, str]:
    """Query id → text, every query of the file (judged or not)."""
    path = Path(folder) / QUERIES_FILE
    queries: dict[str, str] = {}
    for lineno, obj in _json_lines(path):
        qid = _field(path, lineno, obj, "_id")
        if qid in queries:
            raise BeirFormatError(f"{path}:{lineno}: duplicate query id {qid!r}")
        queries[qid] = _field(path, lineno, obj, "text")
    return queries


def load_qrels(folder: str | Path, split: str) -> dict[str, dict[str, int]]:
    """Query id → {document id: relevance} from qrels/<split>.tsv (header line optional)."""
    path = Path(folder) / QRELS_DIR / f"{split}.tsv"
    if not path.is_file():
        raise BeirFileMissing(f"{path}: file not found (splits here: {available_splits(folder)})")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if not row or (lineno == 1 and row[0] == "query-id"):
                continue
            if len(row) != 3:
                raise BeirFormatError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
            try:
                score = int(row[2])
            except ValueError:
                raise BeirFormatError(f"{path}:{lineno}: score {row[2]!r} is not an integer") from None
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def available_splits(folder: str | Path) -> list[str]:
    qdir = Path(folder) / QRELS_DIR
    return sorted(p.stem for p in qdir.glob("*.tsv")) if qdir.is_dir() else []


def load_split(folder: str | Path, split: str = "test", name: str | None = None) -> BeirSplit:
    """A dataset split with only judged queries; qrels naming unknown queries or documents are an error."""
    root = Path(folder)
    corpus = load_corpus(root)
    all_queries = load_queries(root)
    qrels = load_qrels(root, split)
    qrels_path = root / QRELS_DIR / f"{split}.tsv"
    missing_q = sorted(q for q in qrels if q not in all_queries)
    if missing_q:
        raise BeirFormatError(f"{qrels_path}: query ids not in {QUERIES_FILE}: {missing_q[:5]}")
    missing_d = sorted({d for rel in qrels.values() for d in rel if d not in corpus})
    if missing_d:
        raise BeirFormatError(f"{qrels_path}: document ids not in {CORPUS_FILE}: {missing_d[:5]}")
    queries = {q: all_queries[q] for q in qrels}
    return BeirSplit(name or root.name, root, split, corpus, queries, qrels)
