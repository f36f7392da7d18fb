"""Task data for LoRA experts and GLIDER, built from the BEIR-layout corpora under COE_DATA_DIR.

Every task is "write the title of this text" in one domain (or, for SciFact claims, "the title of the study that
tests this claim"). Training uses (prompt, title) pairs; evaluation is 4-way multiple choice between the true
title and the titles of the three most similar other documents (TF-IDF over titles: hard, same-domain
distractors), scored by the model's log-likelihood of each title, so accuracy needs no generation and no judge.
Documents are split by a stable hash of their id: one in five is held back for evaluation and never trained on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from experts.embed.beir import Document, load_corpus, load_qrels, load_queries
from experts.paths import require_data

Split = Literal["train", "eval"]
MAX_WORDS = 48  # words of the document shown in a prompt: keeps a training step affordable on two cores
CHOICES = 4


@dataclass(frozen=True)
class TaskSpec:
    """One task: the dataset folder (relative to COE_DATA_DIR), what the prompt shows, whether experts train on it."""

    name: str
    dataset: str
    kind: Literal["title", "claim"]
    description: str
    held_in: bool


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("scifact-title", "beir/scifact", "title", "biomedical paper abstracts (SciFact)", True),
    TaskSpec("cisi-title", "ir/cisi", "title", "library and information science abstracts (CISI)", True),
    TaskSpec("cranfield-title", "ir/cranfield", "title", "aeronautics abstracts (Cranfield)", True),
    TaskSpec("adi-title", "ir/adi", "title", "documentation and information retrieval papers (ADI)", False),
    TaskSpec("scifact-claim", "beir/scifact", "claim", "scientific claims and the studies testing them (SciFact)",
             False),
)}
HELD_IN = [n for n, t in TASKS.items() if t.held_in]
HELD_OUT = [n for n, t in TASKS.items() if not t.held_in]


@dataclass(frozen=True)
class Example:
    """A training pair: the prompt and the text the model should continue it with."""

    prompt: str
    target: str


@dataclass(frozen=True)
class ChoiceItem:
    """A multiple-choice item: the prompt, candidate continuations and the index of the right one."""

    prompt: str
    choices: tuple[str, ...]
    answer: int


class UnknownTask(KeyError):
    """A task name that is not in TASKS."""


def task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise UnknownTask(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]


def split_of(doc_id: str) -> Split:
    """Stable 80/20 split by document id (independent of file order and Python's hash seed)."""
    return "eval" if int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 5 == 0 else "train"


def clean_title(title: str) -> str:
    return " ".join(title.split()).rstrip(" .")


def body_text(doc: Document) -> str:
    """The document text without a leading copy of its title (Cranfield repeats it), cut to MAX_WORDS words."""
    text, title = " ".join(doc.text.split()), " ".join(doc.title.split())
    if title and text.lower().startswith(title.lower()):
        text = text[len(title):].lstrip(" .")
    return " ".join(text.split()[:MAX_WORDS])


def title_prompt(text: str) -> str:
    return f"Text: {text}\nTitle:"


def claim_prompt(claim: str) -> str:
    return f"Claim: {claim}\nTitle of the study:"


def _titled(folder: Path) -> dict[str, Document]:
    """Documents that have both a title and a body (the task needs both)."""
    return {i: d for i, d in load_corpus(folder).items() if clean_title(d.title) and body_text(d)}


def examples(name: str, split: Split = "train") -> list[Example]:
    """(prompt, " title") pairs of a title task's documents in one split, in corpus order."""
    spec = task(name)
    if spec.kind != "title":
        raise ValueError(f"task {name!r} has no training examples (kind {spec.kind})")
    docs = _titled(require_data(*spec.dataset.split("/")))
    return [Example(title_prompt(body_text(d)), " " + clean_title(d.title))
            for i, d in docs.items() if split_of(i) == split]


def choice_items(name: str, limit: int | None = None, seed: int = 0) -> list[ChoiceItem]:
    """Evaluation items of a task (never a trained-on document), the right title at a random position among 4."""
    titles, pairs, rng = _scored_pairs(name, seed)
    nearest = _nearest_titles(titles)
    items: list[ChoiceItem] = []
    for prompt, k in pairs[: limit or len(pairs)]:
        options = [titles[k], *(titles[j] for j in nearest(k))]
        rng.shuffle(options)
        items.append(ChoiceItem(prompt, tuple(" " + o for o in options), options.index(titles[k])))
    return items


def eval_prompts(name: str, seed: int = 0) -> list[str]:
    """The prompts of choice_items(name, seed=seed) in the same order, without building the choices."""
    return [prompt for prompt, _ in _scored_pairs(name, seed)[1]]


def _scored_pairs(name: str, seed: int) -> tuple[list[str], list[tuple[str, int]], random.Random]:
    """All titles, the shuffled (prompt, title index) pairs that may be scored, and the rng that shuffled them."""
    spec = task(name)
    docs = _titled(require_data(*spec.dataset.split("/")))
    ids = list(docs)
    titles = [clean_title(docs[i].title) for i in ids]
    rng = random.Random(seed)
    if spec.kind == "title":
        # Held-out tasks train no expert, so every document can be an item; held-in ones use the eval split only,
        # less duplicates of a training document (CISI holds the same abstract under two ids).
        trained = {body_text(docs[i]) for i in ids if spec.held_in and split_of(i) == "train"}
        pairs = [(title_prompt(body_text(docs[i])), k) for k, i in enumerate(ids)
                 if (not spec.held_in or split_of(i) == "eval") and body_text(docs[i]) not in trained]
    else:
        pairs = _claim_pairs(require_data(*spec.dataset.split("/")), {i: k for k, i in enumerate(ids)})
    rng.shuffle(pairs)
    return titles, pairs, rng


def _claim_pairs(folder: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    """(claim prompt, index of the first judged study) for every judged SciFact claim (train and test qrels)."""
    queries = load_queries(folder)
    pairs = []
    for split in ("train", "test"):
        for qid, judged in sorted(load_qrels(folder, split).items()):
            doc = next((d for d in sorted(judged) if d in index), None)
            if doc is not None and qid in queries:
                pairs.append((claim_prompt(" ".join(queries[qid].split())), index[doc]))
    return pairs


def _nearest_titles(titles: list[str]) -> Callable[[int], list[int]]:
    """For a title index, the CHOICES-1 most TF-IDF-similar other titles (distinct text), as a function."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(stop_words="english").fit_transform(titles)
    norm_titles = [re.sub(r"\W+", " ", t.lower()).strip() for t in titles]

    def nearest(k: int) -> list[int]:
        sims = (matrix @ matrix[k].T).toarray().ravel()
        order = sorted(range(len(titles)), key=lambda j: (-sims[j], j))
        out: list[int] = []
        seen = {norm_titles[k]}
        for j in order:
            if norm_titles[j] not in seen:
                out.append(j)
                seen.add(norm_titles[j])
            if len(out) == CHOICES - 1:
                break
        return out

    return nearest
