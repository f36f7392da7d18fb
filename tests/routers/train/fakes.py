"""A tiny MMLU-shaped dataset written by the tests, and fake experts that know chosen subjects."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml

from experts.llm.base import BackendInfo
from routers.train.config import ExpertSpec

SUBJECTS = {"alg": "math", "rel": "philosophy"}
ROWS = 20  # split rule i % 10: dev rows 6, 7, 16, 17; held-out rows 8, 9, 18, 19


def write_dataset(root: Path) -> Path:
    for split, n in (("test", ROWS), ("dev", 5)):
        folder = root / "mmlu" / split
        folder.mkdir(parents=True, exist_ok=True)
        for subject in SUBJECTS:
            with (folder / f"{subject}_{split}.csv").open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
                for i in range(n):
                    w.writerow([f"{subject} {split} question {i}", "w", "x", "y", "z", i % 4])
    mt = root / "mt_bench"
    mt.mkdir(parents=True, exist_ok=True)
    lines = [{"question_id": q, "category": "writing", "turns": [f"poem {q}", "again"]} for q in range(81, 91)]
    (mt / "question.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


def write_config(path: Path, k_shot: int = 2, **sections: dict) -> Path:
    """The fake recipe; each keyword's entries update (are merged into) that top-level section."""
    cfg: dict = {
        "super_categories": {"stem": ["math"], "humanities": ["philosophy"], "chat": ["writing"]},
        "mmlu_subjects": SUBJECTS,
        "mt_bench": {"categories": {"writing": "writing"}},
        "split": {"modulus": 10, "train": [0, 1, 2, 3, 4, 5], "dev": [6, 7], "heldout": [8, 9]},
        "limits": {"train_per_subject": None, "dev_per_subject": None, "heldout_per_subject": None},
        "scoring": {"k_shot": k_shot, "dev_per_subject": None, "heldout_per_subject": None},
        "milp": {"sweep": [0.135, 0.2, 0.27, 0.35, 0.42, 0.49]},
        "general_expert": "small",
        "experts": {"big": {"params_b": 0.49}, "mathy": {"params_b": 0.27}, "small": {"params_b": 0.135}},
        "category_map": {},
    }
    for name, entries in sections.items():
        cfg[name] = {**cfg[name], **entries}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


KNOWS = {"big": {"alg", "rel"}, "mathy": {"alg"}, "small": set()}


class FakeBackend:
    """Answers right on the subjects it knows, one letter off elsewhere; counts its calls."""

    def __init__(self, name: str):
        self.name = name
        self.info = BackendInfo(name, "fake", name)
        self.prompts: list[str] = []
        self._tier = "device"

    async def start(self) -> None: ...

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        self.prompts.append(prompt)
        question = prompt.rsplit("\n\n", 1)[-1].split("\n")[0]  # "alg test question 7"
        subject, _, _, index = question.split(" ")
        answer = int(index) % 4
        pred = answer if subject in KNOWS[self.name] else (answer + 1) % 4
        return [0.0 if i == pred else -5.0 for i in range(len(continuations))]

    async def to(self, tier: str) -> None:
        self._tier = tier

    @property
    def tier(self) -> str:
        return self._tier


class Factory:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.backends: dict[str, FakeBackend] = {}

    async def __call__(self, name: str, spec: ExpertSpec) -> FakeBackend:
        self.started.append(name)
        self.backends[name] = FakeBackend(name)
        return self.backends[name]


class KeywordEncoder:
    """10 on the axis of the subject keyword (alg → math, rel → philosophy, poem → writing)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for i, t in enumerate(texts):
            for axis, word in enumerate(("alg", "rel", "poem")):
                if t.startswith(word):
                    out[i, axis] = 10.0
        return out
