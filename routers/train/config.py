"""Pydantic schema of the CoE router training recipe (configs/train/coe.yaml), validated once on load."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Split = Literal["train", "dev", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "dev", "heldout")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitRule(_Strict):
    """Row i (or MT-Bench question_id) goes to the split whose bucket list holds i % modulus."""

    modulus: int = Field(default=10, ge=2)
    train: list[int]
    dev: list[int]
    heldout: list[int]

    @model_validator(mode="after")
    def _partition(self) -> SplitRule:
        buckets = self.train + self.dev + self.heldout
        if sorted(buckets) != list(range(self.modulus)):
            raise ValueError(f"train/dev/heldout buckets must partition 0..{self.modulus - 1}, got {buckets}")
        return self

    def split_of(self, index: int) -> Split:
        bucket = index % self.modulus
        for name in SPLITS:
            if bucket in getattr(self, name):
                return name
        raise AssertionError("unreachable: buckets partition the modulus")


class Limits(_Strict):
    """Per-subject caps (first rows of each bucket) that keep the default run short; None = no cap."""

    train_per_subject: int | None = Field(default=24, ge=1)
    dev_per_subject: int | None = Field(default=8, ge=1)
    heldout_per_subject: int | None = Field(default=12, ge=1)

    def cap(self, split: Split) -> int | None:
        return {
            "train": self.train_per_subject,
            "dev": self.dev_per_subject,
            "heldout": self.heldout_per_subject,
        }[split]


class MTBenchConfig(_Strict):
    categories: dict[str, str] = Field(description="MT-Bench category -> router category")
    relabel: dict[int, str] = Field(default_factory=dict, description="question_id -> router category")
    turns: list[int] = Field(default_factory=lambda: [1, 2])


class ClassifierConfig(_Strict):
    Cs: list[float] = Field(default_factory=lambda: [0.3, 1.0, 3.0, 10.0, 30.0], min_length=1)
    cv_folds: int = Field(default=3, ge=2)
    max_iter: int = Field(default=2000, ge=10)
    class_weight: Literal["balanced"] | None = "balanced"


class CalibrationConfig(_Strict):
    ece_bins: int = Field(default=15, ge=2)


class FallbackConfig(_Strict):
    max_fallback_rate: float = Field(default=0.3, ge=0, le=1)
    min_confidence: float | None = Field(default=None, gt=0, le=1)


class ScoringConfig(_Strict):
    """k-shot MMLU scoring of every expert (phase 2): prompt shape and how many questions per subject."""

    k_shot: int = Field(default=5, ge=0, le=5)
    max_prompt_chars: int = Field(default=6000, ge=200, description="shots are dropped until the prompt fits")
    dev_per_subject: int | None = Field(default=8, ge=1)
    heldout_per_subject: int | None = Field(default=12, ge=1)
    device: str = "cpu"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    answer_prior: Literal["none", "dev"] = Field(
        default="none", description="dev: divide out each expert's letter prior, estimated on the dev questions"
    )
    shrinkage: Literal["none", "empirical_bayes"] = Field(
        default="none", description="empirical_bayes: shrink category accuracies toward the expert's mean"
    )


class MilpConfig(_Strict):
    """The map chosen for the artifact (budget in billions of active parameters) and the evaluation sweep."""

    budget: float | None = Field(default=None, gt=0)
    max_experts: int | None = Field(default=None, ge=1)
    sweep: list[float] = Field(default_factory=lambda: [0.135, 0.2, 0.27, 0.35, 0.42, 0.49])
    fixed: dict[str, str] = Field(default_factory=dict, description="category -> expert the MILP may not change")


class ExpertSpec(_Strict):
    params_b: float = Field(gt=0)
    model: str = ""
    chat_template: bool = True
    description: str = ""


class CoETrainConfig(_Strict):
    """The whole recipe: taxonomy, data splits, classifier, calibration, fallback and the prior map."""

    encoder: str = "registry:all-minilm-l6-v2"
    super_categories: dict[str, list[str]]
    mmlu_subjects: dict[str, str]
    mt_bench: MTBenchConfig
    split: SplitRule
    limits: Limits = Field(default_factory=Limits)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    milp: MilpConfig = Field(default_factory=MilpConfig)
    general_expert: str
    experts: dict[str, ExpertSpec] = Field(min_length=1)
    category_map: dict[str, str] = Field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        """All router categories in super-category order (the classifier's column order)."""
        return [c for group in self.super_categories.values() for c in group]

    def super_category_of(self, category: str) -> str:
        for name, group in self.super_categories.items():
            if category in group:
                return name
        raise KeyError(category)

    @model_validator(mode="after")
    def _consistent(self) -> CoETrainConfig:
        cats = self.categories
        if len(set(cats)) != len(cats):
            raise ValueError("a category appears in more than one super-category")
        known = set(cats)
        used = (
            set(self.mmlu_subjects.values())
            | set(self.mt_bench.categories.values())
            | set(self.mt_bench.relabel.values())
        )
        problems = {
            "labels outside super_categories": sorted(used - known),
            "categories without training data": sorted(known - used),
            "category_map keys that are not categories": sorted(set(self.category_map) - known),
            "category_map experts not in experts": sorted(set(self.category_map.values()) - set(self.experts)),
            "milp.fixed keys that are not categories": sorted(set(self.milp.fixed) - known),
            "milp.fixed experts not in experts": sorted(set(self.milp.fixed.values()) - set(self.experts)),
        }
        if self.general_expert not in self.experts:
            problems["general_expert not in experts"] = [self.general_expert]
        bad = {k: v for k, v in problems.items() if v}
        if bad:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in bad.items()))
        return self


def load_train_config(path: str | Path) -> CoETrainConfig:
    """Read and validate the YAML recipe; errors name the file and each bad field."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: training config not found")
    try:
        return CoETrainConfig.model_validate(yaml.safe_load(p.read_text()))
    except ValidationError as err:
        lines = [f"  {'.'.join(str(x) for x in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()]
        raise ValueError(f"{p}: invalid training config\n" + "\n".join(lines)) from None
