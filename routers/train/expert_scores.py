"""Per-category expert scores from k-shot MMLU, measured through the real backend protocol.

Each question is scored by the log-likelihood of " A"/" B"/" C"/" D" after a k-shot prompt built from the
subject's dev CSV (`LLMBackend.loglikelihoods`); the prediction is the argmax. Results are cached per expert ×
question in a JSONL file under the cache dir, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from experts.llm.base import LLMBackend
from experts.paths import cache_dir
from routers.train.config import ExpertSpec
from routers.train.datasets import LETTERS, MMLUQuestion, format_question, mmlu_shots

log = logging.getLogger(__name__)

PROMPT_VERSION = 1  # bump when kshot_prompt changes: it names the cache folder
CONTINUATIONS = [f" {letter}" for letter in LETTERS]

BackendFactory = Callable[[str, ExpertSpec], Awaitable[LLMBackend]]


@dataclass(frozen=True)
class ScoreRecord:
    """One expert's log-likelihoods of the four answer letters for one question."""

    id: str
    expert: str
    ll: list[float]
    answer: int
    shots: int

    @property
    def pred(self) -> int:
        return int(np.argmax(self.ll))

    @property
    def correct(self) -> bool:
        return self.pred == self.answer


def kshot_prompt(question: MMLUQuestion, shots: Sequence[MMLUQuestion], k: int, max_chars: int) -> tuple[str, int]:
    """The classic MMLU prompt (Hendrycks et al.); drops shots from the end until it fits `max_chars`."""
    head = f"The following are multiple choice questions (with answers) about {question.subject.replace('_', ' ')}.\n\n"
    tail = format_question(question) + "\nAnswer:"
    blocks = [f"{format_question(s)}\nAnswer: {LETTERS[s.answer]}\n\n" for s in shots[:k]]
    while blocks and len(head) + sum(map(len, blocks)) + len(tail) > max_chars:
        blocks.pop()
    return head + "".join(blocks) + tail, len(blocks)


class ScoreCache:
    """Append-only JSONL of ScoreRecords for one expert (and model); the last line of an id wins."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, ScoreRecord]:
        out: dict[str, ScoreRecord] = {}
        if not self.path.is_file():
            return out
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = ScoreRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut by an interrupted run; that question is scored again
            out[rec.id] = rec
        return out

    def append(self, rec: ScoreRecord) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(rec)) + "\n")


def cache_for(expert: str, model_ref: str, k: int, max_chars: int, root: Path | None = None) -> ScoreCache:
    key = hashlib.sha256(f"{model_ref}|{k}|{max_chars}".encode()).hexdigest()[:10]
    base = root or cache_dir() / "expert_scores"
    return ScoreCache(base / f"mmlu-kshot-v{PROMPT_VERSION}" / f"{expert}-{key}.jsonl")


async def score_questions(
    backend: LLMBackend,
    expert: str,
    questions: Sequence[MMLUQuestion],
    cache: ScoreCache,
    k: int = 5,
    max_chars: int = 6000,
    shots: Mapping[str, list[MMLUQuestion]] | None = None,
) -> dict[str, ScoreRecord]:
    """Score the questions not yet in the cache; returns the records of all `questions`."""
    done = cache.load()
    pool = dict(shots or {})
    todo = [q for q in questions if q.id not in done]
    for q in tqdm(todo, desc=f"score {expert}", unit="q", disable=not todo):
        if q.subject not in pool:
            pool[q.subject] = mmlu_shots(q.subject)
        prompt, used = kshot_prompt(q, pool[q.subject], k, max_chars)
        ll = await backend.loglikelihoods(prompt, CONTINUATIONS)
        rec = ScoreRecord(q.id, expert, [float(x) for x in ll], q.answer, used)
        cache.append(rec)
        done[q.id] = rec
    return {q.id: done[q.id] for q in questions}


def transformers_factory(device: str = "cpu", dtype: str = "bfloat16") -> BackendFactory:
    """The default factory: each registry model in the transformers backend, started."""

    async def make(name: str, spec: ExpertSpec) -> LLMBackend:
        from experts.llm.base import BackendOptions
        from experts.llm.registry_models import resolve_model  # type: ignore[import-not-found,unused-ignore]
        from experts.llm.transformers_backend import TransformersBackend

        path = resolve_model(spec.model)
        options = BackendOptions(dtype=dtype, chat_template=spec.chat_template, device=device)  # type: ignore[arg-type]
        backend = TransformersBackend(name, path, options)
        await backend.start()
        return backend

    return make


async def score_experts(
    experts: Mapping[str, ExpertSpec],
    questions: Sequence[MMLUQuestion],
    k: int = 5,
    max_chars: int = 6000,
    factory: BackendFactory | None = None,
    cache_root: Path | None = None,
) -> dict[str, dict[str, ScoreRecord]]:
    """Every expert on every question; a backend is started only when its cache misses questions."""
    out: dict[str, dict[str, ScoreRecord]] = {}
    for name, spec in experts.items():
        cache = cache_for(name, spec.model, k, max_chars, cache_root)
        cached = cache.load()
        if all(q.id in cached for q in questions):
            out[name] = {q.id: cached[q.id] for q in questions}
            continue
        backend = await (factory or transformers_factory())(name, spec)
        try:
            out[name] = await score_questions(backend, name, questions, cache, k, max_chars)
        finally:
            await backend.to("disk")  # one expert in memory at a time
    return out


def category_scores(
    correct: np.ndarray,
    questions: Sequence[MMLUQuestion],
    category_of_subject: Mapping[str, str],
    categories: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """s(c, m) = mean of `correct` [experts, questions] over category c's questions, and the count per category.

    Categories without questions get NaN scores and count 0.
    """
    cats = np.array([category_of_subject[q.subject] for q in questions])
    scores = np.full((len(categories), correct.shape[0]), np.nan)
    counts = np.zeros(len(categories))
    for i, c in enumerate(categories):
        mask = cats == c
        counts[i] = mask.sum()
        if mask.any():
            scores[i] = correct[:, mask].mean(axis=1)
    return scores, counts
