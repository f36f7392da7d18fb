"""One faiss index per corpus, built with the base encoder so every query expert searches the same index.

A folder holds `index.faiss`, `doc_ids.json` and `manifest.json` (corpus sha256, encoder id, checksums of
both files). It is rebuilt only when the corpus or the encoder changes; a file whose checksum does not match
is refused, because silently rebuilding would hide disk damage or a hand-edited index.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from experts.artifact_store import (
    MANIFEST_FILE,
    ArtifactError,
    check_header,
    read_object,
    sha256_file,
    verify_files,
    write_json,
    write_manifest,
)
from experts.embed.beir import load_corpus

log = logging.getLogger(__name__)

KIND = "corpus-index"
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
IDS_FILE = "doc_ids.json"
REBUILD_HINT = "delete the folder to rebuild it"
FLAT_LIMIT = 100_000  # exact search is cheap below this; HNSW above keeps latency flat
HNSW_M = 32
HNSW_EF_SEARCH = 128


IndexCorruptError = ArtifactError  # the one artifact error (experts/artifact_store.py), under its known name


class TextEncoder(Protocol):
    """What index building needs from an encoder (SentenceEncoder and ExpertQueryEncoder fit)."""

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray: ...


@dataclass
class CorpusIndex:
    """A faiss index and the document id of each row."""

    name: str
    index: Any  # faiss.Index
    doc_ids: list[str]
    manifest: dict[str, Any]

    def search(self, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k inner-product scores and document ids for each query row."""
        k = min(k, len(self.doc_ids))
        scores, rows = self.index.search(np.ascontiguousarray(query_emb, dtype=np.float32), k)
        ids = [[self.doc_ids[r] for r in row if r >= 0] for row in rows]
        return scores, ids

    def embeddings(self) -> np.ndarray:
        """The stored document vectors (used by adapter training, so documents are encoded once)."""
        return self.index.reconstruct_n(0, self.index.ntotal)


def make_index(emb: np.ndarray, flat_limit: int = FLAT_LIMIT) -> Any:
    """IndexFlatIP up to `flat_limit` rows, HNSW (inner product) above."""
    import faiss

    dim = emb.shape[1]
    index: Any
    if emb.shape[0] <= flat_limit:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(emb, dtype=np.float32))
    return index


def build_index(
    name: str, corpus_folder: Path, encoder: TextEncoder, encoder_id: str, out: Path,
    flat_limit: int = FLAT_LIMIT, show_progress: bool = False,
) -> CorpusIndex:
    """Encode every document with the base encoder and persist index + ids + manifest into `out`."""
    import faiss

    start = time.perf_counter()
    corpus = load_corpus(corpus_folder)
    doc_ids = list(corpus)
    emb = encoder.encode([corpus[d].full_text() for d in doc_ids], show_progress=show_progress)
    index = make_index(emb, flat_limit)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (INDEX_FILE + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, out / INDEX_FILE)
    write_json(out / IDS_FILE, doc_ids, indent=1)
    manifest = write_manifest(
        out, KIND, FORMAT_VERSION, (INDEX_FILE, IDS_FILE), name=name,
        corpus_sha256=sha256_file(corpus_folder / "corpus.jsonl"), encoder=encoder_id, doc_count=len(doc_ids),
        dim=int(emb.shape[1]), index_type=type(index).__name__, build_seconds=round(time.perf_counter() - start, 2))
    log.info("built index", extra={"corpus": name, "docs": len(doc_ids), "seconds": manifest["build_seconds"]})
    return CorpusIndex(name, index, doc_ids, manifest)


def read_index_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest, or None when there is none; indexes built before the shared store have no kind: theirs."""
    if not (folder / MANIFEST_FILE).is_file():
        return None
    return {"kind": KIND} | read_object(folder / MANIFEST_FILE)


def load_index(folder: Path) -> CorpusIndex:
    """Read a persisted index after checking every file against the manifest."""
    import faiss

    manifest = read_index_manifest(folder)
    if manifest is None:
        raise IndexCorruptError(f"{folder / MANIFEST_FILE}: missing")
    check_header(folder, manifest, KIND, FORMAT_VERSION)
    verify_files(folder, manifest, (INDEX_FILE, IDS_FILE), hint=REBUILD_HINT)
    try:
        index = faiss.read_index(str(folder / INDEX_FILE))
    except RuntimeError as err:
        raise IndexCorruptError(f"{folder / INDEX_FILE}: faiss cannot read it ({err})") from None
    doc_ids = json.loads((folder / IDS_FILE).read_text())
    if index.ntotal != len(doc_ids):
        raise IndexCorruptError(f"{folder / INDEX_FILE}: {index.ntotal} vectors but {len(doc_ids)} document ids")
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return CorpusIndex(str(manifest.get("name", folder.name)), index, doc_ids, manifest)


def is_current(manifest: dict[str, Any] | None, corpus_folder: Path, encoder_id: str) -> bool:
    """True when the persisted index was built from this exact corpus file with this encoder."""
    if manifest is None or manifest.get("kind") != KIND or manifest.get("format_version") != FORMAT_VERSION:
        return False
    if manifest.get("encoder") != encoder_id:
        return False
    return manifest.get("corpus_sha256") == sha256_file(corpus_folder / "corpus.jsonl")


def load_or_build_index(
    name: str, corpus_folder: Path, encoder: TextEncoder, encoder_id: str, index_root: Path,
    flat_limit: int = FLAT_LIMIT, show_progress: bool = False,
) -> CorpusIndex:
    """The persisted index when it is current, else a fresh build (corpus or encoder changed, or none yet)."""
    folder = index_root / name
    if is_current(read_index_manifest(folder), corpus_folder, encoder_id):
        return load_index(folder)
    return build_index(name, corpus_folder, encoder, encoder_id, folder, flat_limit, show_progress)
