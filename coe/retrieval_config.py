"""The `retrieval:` section of the service config: base encoder, expert adapters, router, corpora, indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from experts.paths import cache_dir, data_dir, repo_path

RETRIEVER_MODEL = "coe-retriever"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # every name coe serves: experts, pools, retrieval experts


class CorpusConfig(BaseModel):
    """One searchable corpus: a folder in BEIR layout (relative paths resolve against COE_DATA_DIR)."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    description: str = ""

    def folder(self) -> Path:
        return self.path if self.path.is_absolute() else data_dir() / self.path


class RetrievalConfig(BaseModel):
    """Routed retrieval: queries go to one expert query encoder (base + LoRA) chosen by the pilot router."""

    model_config = ConfigDict(extra="forbid")

    encoder: str = "registry:all-minilm-l6-v2"
    experts: dict[str, Path] = Field(default_factory=dict, description="expert name -> adapter artifact folder")
    router_artifact: Path | None = Field(
        default=Path("artifacts/retriever/router"), description="None: base encoder only")
    rule: Literal["mean", "nearest"] = "mean"
    corpora: dict[str, CorpusConfig] = Field(default_factory=dict)
    index_dir: Path | None = Field(default=None, description="None: <COE_CACHE_DIR>/indexes")
    max_top_k: int = Field(default=1000, ge=1)
    max_batch: int = Field(default=64, ge=1)
    batch_size: int = Field(default=32, ge=1, description="encoder batch size")
    threads: int | None = Field(
        default=None, ge=1,
        description="torch intra-op threads of the retriever deployment; None: Ray's default, one per whole CPU "
                    "the deployment reserves (at least one)")

    @field_validator("experts", "corpora")
    @classmethod
    def _names(cls, value: dict) -> dict:
        import re

        bad = [n for n in value if not re.fullmatch(NAME_PATTERN, n) or n in (RETRIEVER_MODEL, "base")]
        if bad:
            raise ValueError(f"invalid or reserved names {bad} (lower-case letters, digits, . _ -)")
        return value

    @model_validator(mode="after")
    def _router_needs_experts(self) -> RetrievalConfig:
        if self.router_artifact is not None and not self.experts:
            raise ValueError("router_artifact is set but no experts are configured")
        return self

    def resolve(self, path: Path) -> Path:
        """Artifact paths are relative to the repository root."""
        return repo_path(path)

    def indexes(self) -> Path:
        return self.index_dir if self.index_dir is not None else cache_dir() / "indexes"
