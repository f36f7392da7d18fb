"""The recipe of routers trained on recorded outcomes (`coe train coe-router --outcomes`, `coe eval outcomes`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from routers.train.config import ClassifierConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PerPromptGrid(_Strict):
    """Candidates for the per-prompt router, chosen on an inner validation split of the training table."""

    k: list[int] = Field(default_factory=lambda: [5, 10, 20, 40, 80, 160, 320, 640], min_length=1)
    bandwidth: list[float | None] = Field(
        default_factory=lambda: [None, 0.2, 0.1, 0.05], min_length=1,
        description="kernel h of exp((cos - 1) / h); null: equal votes")
    shrinkage: list[float] = Field(default_factory=lambda: [0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0],
                                   min_length=1)
    prior_alpha: list[float | None] = Field(
        default_factory=lambda: [None, 3.0, 10.0, 30.0], min_length=1,
        description="what neighbours shrink toward: null = the category means under π; a number = ridge α of the "
                    "linear prior on [embedding, text features]")
    feature_scale: float = Field(default=0.3, gt=0, description="weight of the standardised text features in the prior")


class OutcomeTrainConfig(_Strict):
    """Classifier, out-of-fold validation, fallback and per-prompt grid for outcome-table routers."""

    encoder: str = "registry:all-minilm-l6-v2"
    classifier: ClassifierConfig = Field(default_factory=lambda: ClassifierConfig(Cs=[0.3, 1.0, 3.0, 10.0, 30.0]))
    folds: int = Field(default=5, ge=2,
                       description="inner K-fold: out-of-fold π for τ, validation for the per-prompt grid")
    max_fallback_rate: float = Field(default=0.3, ge=0, le=1)
    fallback_min_z: float = Field(default=2.0, ge=0,
                                  description="a fallback τ must beat none by this many standard errors")
    map_on: Literal["labelled", "predicted"] = Field(
        default="labelled",
        description="group prompts for the map's per-category means by their labelled category (the paper) or by "
                    "the out-of-fold predicted one (what the map will see at test time, misclassifications included)")
    map_shrinkage: list[float] = Field(
        default_factory=lambda: [0.0, 10.0, 30.0, 100.0, 300.0], min_length=1,
        description="pseudo-counts m pulling each category's means toward the table's (n·mean_c + m·mean)/(n + m); "
                    "the one whose argmax map scores best on the inner folds is used (small categories are noisy)")
    seed: int = 0
    per_prompt: PerPromptGrid = Field(default_factory=lambda: PerPromptGrid())
