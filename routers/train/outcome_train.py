"""`coe train coe-router --outcomes DIR` and `coe train per-prompt-router --outcomes DIR`: servable artifacts from
recorded outcome tables (the same fitting code `coe eval outcomes` measures)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routers.artifacts import data_checksum
from routers.base import Encoder
from routers.train.outcome_classifier import fit_outcome_classifier
from routers.train.outcome_coe import fit_outcome_map, save_outcome_coe
from routers.train.outcome_config import OutcomeTrainConfig
from routers.train.outcome_embeddings import table_embeddings
from routers.train.outcome_per_prompt import build_per_prompt, save_per_prompt, select_params, train_cost_penalty
from routers.train.outcome_table import (
    MODELS_FILE,
    PROMPTS_FILE,
    SCORES_FILE,
    OutcomeTable,
    read_outcome_tables,
    table_names,
)

log = logging.getLogger(__name__)


def outcome_checksums(folders: Sequence[Path]) -> dict[str, str]:
    """sha256 of each table's three files, keyed by the folder name (the manifest's training data)."""
    return {f"outcomes/{Path(f).name}": data_checksum([Path(f) / n for n in (PROMPTS_FILE, SCORES_FILE, MODELS_FILE)],
                                                      Path(f)) for f in folders}


def _load(folders: Sequence[Path], costs: Mapping[str, float] | None, cfg: OutcomeTrainConfig,
          encoder: Encoder | None) -> tuple[OutcomeTable, Any]:
    table = read_outcome_tables(folders, costs)
    return table, table_embeddings(table, cfg.encoder, encoder)


def _write_report(out: Path, report: dict[str, Any]) -> None:
    """report.json for people and tools: strict JSON, so a τ of ∞ (no fallback) is written as null."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in report.items()}
    (out / "report.json").write_text(json.dumps(clean, indent=2, sort_keys=True, allow_nan=False) + "\n")


def train_coe_from_outcomes(folders: Sequence[Path], out_dir: str | Path, budget: float | None,
                            costs: Mapping[str, float] | None = None, cfg: OutcomeTrainConfig | None = None,
                            command: str = "", encoder: Encoder | None = None) -> dict[str, Any]:
    """Classifier + MILP map at `budget` + τ → a `coe-router` artifact that `coe serve` loads."""
    t0 = time.perf_counter()
    cfg = cfg or OutcomeTrainConfig()
    table, emb = _load(folders, costs, cfg, encoder)
    clf = fit_outcome_classifier(emb, table.categories, cfg)
    fit = fit_outcome_map(table, clf, budget, cfg)
    out = save_outcome_coe(out_dir, table, clf, fit, cfg.encoder, outcome_checksums(folders), command)
    report = {
        "command": command, "tables": table_names(folders), "prompts": len(table), "budget": budget,
        "category_map": fit.category_map, "general_model": fit.general_model, "tau_entropy": fit.tau,
        "train_accuracy": fit.train_accuracy, "train_avg_cost": fit.train_avg_cost,
        "oof_fallback_rate": fit.oof_fallback_rate,
        "map_shrinkage": fit.map_shrinkage,
        "classifier_oof_accuracy": float((clf.oof_probs.argmax(axis=1) == clf.labels).mean()),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _write_report(out, report)
    log.info("trained outcome coe router", extra={"out": str(out), "budget": budget})
    return report


def train_per_prompt_from_outcomes(folders: Sequence[Path], out_dir: str | Path, budget: float | None,
                                   costs: Mapping[str, float] | None = None, cfg: OutcomeTrainConfig | None = None,
                                   command: str = "", encoder: Encoder | None = None) -> dict[str, Any]:
    """k, kernel, shrinkage and prior chosen on the inner folds; λ so the out-of-fold average cost meets `budget`."""
    t0 = time.perf_counter()
    cfg = cfg or OutcomeTrainConfig()
    table, emb = _load(folders, costs, cfg, encoder)
    clf = fit_outcome_classifier(emb, table.categories, cfg)
    fit = select_params(emb, table, clf, cfg)
    lam = train_cost_penalty(fit, table, budget)
    router = build_per_prompt(emb, table, clf, fit, cfg, lam)
    out = save_per_prompt(out_dir, router, fit, table, cfg.encoder, budget, outcome_checksums(folders), command)
    p = fit.params
    report = {
        "command": command, "tables": table_names(folders), "prompts": len(table), "budget": budget,
        "cost_penalty": lam, "k": p.k, "bandwidth": p.bandwidth, "shrinkage": p.shrinkage,
        "prior_alpha": fit.prior_alpha, "validation_score": fit.validation_score,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _write_report(out, report)
    return report
