"""MMLU and MT-Bench readers with the deterministic train/dev/heldout split of the training recipe.

Data is read only through `experts.paths` (COE_DATA_DIR), never copied into the repo.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from experts.paths import require_data
from routers.artifacts import data_checksum
from routers.train.config import CoETrainConfig, Split

LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class MMLUQuestion:
    subject: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: int

    @property
    def id(self) -> str:
        return f"{self.subject}/{self.index}"


@dataclass(frozen=True)
class LabelledText:
    """One classifier example: the text the router sees and its category."""

    id: str
    text: str
    category: str
    source: str  # "mmlu" or "mt_bench"
    group: str  # MMLU subject or MT-Bench category


def format_question(q: MMLUQuestion) -> str:
    """The user message of an MMLU question (question, lettered choices) as the router sees it served."""
    lines = [q.question.strip()]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices, strict=True)]
    return "\n".join(lines)


def read_mmlu_csv(path: Path, subject: str) -> list[MMLUQuestion]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        MMLUQuestion(
            subject,
            i,
            r["question"],
            (r["choice0"], r["choice1"], r["choice2"], r["choice3"]),
            int(r["answer"]),
        )
        for i, r in enumerate(rows)
    ]


def mmlu_split(cfg: CoETrainConfig, split: Split, cap: int | None = None) -> list[MMLUQuestion]:
    """The split's questions of every configured subject, first `cap` per subject, in subject order."""
    out: list[MMLUQuestion] = []
    for subject in sorted(cfg.mmlu_subjects):
        rows = read_mmlu_csv(require_data("mmlu", "test", f"{subject}_test.csv"), subject)
        chosen = [q for q in rows if cfg.split.split_of(q.index) == split]
        out += chosen[:cap] if cap is not None else chosen
    return out


def mmlu_shots(subject: str) -> list[MMLUQuestion]:
    """The subject's dev CSV: the usual 5-shot exemplars."""
    return read_mmlu_csv(require_data("mmlu", "dev", f"{subject}_dev.csv"), subject)


def mmlu_texts(cfg: CoETrainConfig, questions: list[MMLUQuestion]) -> list[LabelledText]:
    return [LabelledText(q.id, format_question(q), cfg.mmlu_subjects[q.subject], "mmlu", q.subject) for q in questions]


def mt_bench_texts(cfg: CoETrainConfig, split: Split) -> list[LabelledText]:
    """MT-Bench turns of the split (by question_id), labelled with router categories."""
    path = require_data("mt_bench", "question.jsonl")
    out: list[LabelledText] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        qid, source = int(item["question_id"]), str(item["category"])
        if cfg.split.split_of(qid) != split:
            continue
        category = cfg.mt_bench.relabel.get(qid) or cfg.mt_bench.categories.get(source)
        if category is None:
            raise ValueError(f"{path}: question {qid} has category {source!r} with no router category")
        for turn in cfg.mt_bench.turns:
            if turn <= len(item["turns"]):
                text = item["turns"][turn - 1]
                out.append(LabelledText(f"mt_bench/{qid}/{turn}", text, category, "mt_bench", source))
    return out


def split_texts(cfg: CoETrainConfig, split: Split, use_caps: bool = True) -> list[LabelledText]:
    """MMLU + MT-Bench examples of one split."""
    cap = cfg.limits.cap(split) if use_caps else None
    return mmlu_texts(cfg, mmlu_split(cfg, split, cap)) + mt_bench_texts(cfg, split)


def training_data_checksums(cfg: CoETrainConfig) -> dict[str, str]:
    """Checksums of the files the router was trained on, for the artifact manifest."""
    test_dir = require_data("mmlu", "test")
    mmlu_files = [test_dir / f"{s}_test.csv" for s in sorted(cfg.mmlu_subjects)]
    mt = require_data("mt_bench", "question.jsonl")
    return {
        "mmlu/test": data_checksum(mmlu_files, test_dir.parent.parent),
        "mt_bench/question.jsonl": data_checksum([mt], mt.parent.parent),
    }
