"""Phase 2 of CoE training: replace the prior category→expert map with the MILP over measured expert scores.

Scores every expert on the dev split (k-shot MMLU, cached), solves the map under the configured budget, re-chooses
τ with the real per-question correctness, and rewrites the router artifact (same classifier, new map and τ).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routers.artifacts import load_artifact, read_manifest, save_artifact
from routers.base import Encoder, RouteInput
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION, CoERouter, entropy
from routers.train.answer_prior import AnswerScorer
from routers.train.config import CoETrainConfig, ScoringConfig, load_train_config
from routers.train.datasets import MMLUQuestion, format_question, mmlu_split
from routers.train.expert_scores import (
    BackendFactory,
    ScoreRecord,
    category_scores,
    score_experts,
    transformers_factory,
)
from routers.train.fallback import choose_tau
from routers.train.milp import MapSolution, solve_category_map
from routers.train.shrinkage import CategorySignal, shrink_scores

MEASURED_TAU_RULE = "maximises dev accuracy of the routed expert (fallback answers with the general expert)"


@dataclass(frozen=True)
class ScoreTable:
    """s(c, m) on the scored categories (shrunk if configured), with the question counts as category weights."""

    categories: list[str]
    experts: list[str]
    scores: np.ndarray
    counts: np.ndarray
    params: np.ndarray
    raw_scores: np.ndarray
    signals: list[CategorySignal] | None = None
    fixed: dict[str, str] | None = None  # scored categories whose expert the config pins

    def solve(self, budget: float | None, max_experts: int | None = None) -> MapSolution:
        return solve_category_map(
            self.scores, self.counts, self.params, self.categories, self.experts, budget, max_experts, self.fixed
        )

    def as_dict(self) -> dict[str, Any]:
        """Per category: question count, the score the MILP used per expert, and the raw accuracy if it differs."""
        out: dict[str, Any] = {}
        for c, n, row, raw in zip(self.categories, self.counts, self.scores, self.raw_scores, strict=True):
            out[c] = {"n": int(n), **{e: round(float(s), 4) for e, s in zip(self.experts, row, strict=True)}}
            if self.signals is not None:
                out[c]["raw"] = {e: round(float(s), 4) for e, s in zip(self.experts, raw, strict=True)}
        return out

    def signal(self) -> dict[str, dict[str, float]] | None:
        """Per expert: overall dev accuracy and the between-category SD (0: no category specialisation seen)."""
        if self.signals is None:
            return None
        return {e: s.as_dict() for e, s in zip(self.experts, self.signals, strict=True)}


def answer_scorer(sc: ScoringConfig, dev_records: dict[str, dict[str, ScoreRecord]]) -> AnswerScorer:
    """The configured right/wrong rule; the letter priors come from the dev questions only."""
    return AnswerScorer.from_records(dev_records) if sc.answer_prior == "dev" else AnswerScorer()


def score_table(
    cfg: CoETrainConfig,
    records: dict[str, dict[str, ScoreRecord]],
    qs: list[MMLUQuestion],
    scorer: AnswerScorer | None = None,
) -> ScoreTable:
    """The MILP's input: categories that have scored questions, experts in config order."""
    experts = list(records)
    correct = (scorer or AnswerScorer()).correctness(records, [q.id for q in qs])
    raw, counts = category_scores(correct, qs, cfg.mmlu_subjects, cfg.categories)
    keep = counts > 0
    raw, counts = raw[keep], counts[keep]
    scores, signals = raw, None
    if cfg.scoring.shrinkage == "empirical_bayes":
        scores, signals = shrink_scores(raw, counts)
    params = np.array([cfg.experts[e].params_b for e in experts])
    cats = [c for c, k in zip(cfg.categories, keep, strict=True) if k]
    fixed = {c: e for c, e in cfg.milp.fixed.items() if c in cats}
    return ScoreTable(cats, experts, scores, counts, params, raw, signals, fixed)


def routed_experts(router: CoERouter, questions: list[MMLUQuestion]) -> list[str]:
    """The serving path: route the question text exactly as a chat request would be routed."""
    return [d.expert for d in router.route([RouteInput(format_question(q)) for q in questions])]


def tau_from_correctness(
    router: CoERouter,
    questions: list[MMLUQuestion],
    records: dict[str, dict[str, ScoreRecord]],
    cap: float,
    scorer: AnswerScorer | None = None,
) -> tuple[float, dict[str, float]]:
    """τ maximising dev accuracy of the routed expert (fallback: the general expert's answer)."""
    ids = [q.id for q in questions]
    correct = (scorer or AnswerScorer()).correctness(records, ids)
    index = {e: i for i, e in enumerate(records)}
    no_fallback = CoERouter(
        router.encoder,
        router.weights,
        router.bias,
        router.categories,
        router.temperature,
        router.category_map,
        router.general_expert,
        float("inf"),
    )
    assert no_fallback.encoder is not None
    probs = no_fallback.probabilities(no_fallback.encoder.encode([format_question(q) for q in questions]))
    decisions = no_fallback.decide(probs)
    routed = np.array([correct[index[d.expert], j] for j, d in enumerate(decisions)])
    fallback = correct[index[router.general_expert]]
    choice = choose_tau(entropy(probs), routed, fallback, cap)
    return choice.tau, {
        "dev_accuracy": choice.expected_score,
        "dev_fallback_rate": choice.fallback_rate,
        "dev_accuracy_without_fallback": choice.score_without_fallback,
    }


async def fit_category_map(
    config_path: str | Path,
    artifact_dir: str | Path,
    encoder: Encoder,
    factory: BackendFactory | None = None,
    limit: int | None = None,
    command: str | None = None,
    append_command: bool = True,
) -> dict[str, Any]:
    """Score experts on dev, solve the MILP at `milp.budget`, re-choose τ, rewrite the artifact; returns a summary.

    The manifest's command becomes `<previous command> && <command>`, or just `command` without `append_command`
    (when the training run that wrote the artifact also fits the map).
    """
    cfg = load_train_config(config_path)
    sc = cfg.scoring
    caps = [x for x in (limit, sc.dev_per_subject) if x is not None]
    cap = min(caps) if caps else None
    dev = mmlu_split(cfg, "dev", cap)
    records = await score_experts(
        cfg.experts, dev, sc.k_shot, sc.max_prompt_chars, factory or transformers_factory(sc.device, sc.dtype)
    )
    scorer = answer_scorer(sc, records)
    table = score_table(cfg, records, dev, scorer)
    sol = table.solve(cfg.milp.budget, cfg.milp.max_experts)
    art = load_artifact(artifact_dir, ARTIFACT_KIND, ARTIFACT_VERSION)
    new_map = {**art.meta["category_map"], **cfg.milp.fixed, **sol.category_map}
    router = CoERouter.from_artifact(artifact_dir, encoder, category_map_override=new_map)  # τ for the saved map
    tau, tau_stats = tau_from_correctness(router, dev, records, cfg.fallback.max_fallback_rate, scorer)
    map_source = {
        "method": "milp",
        "budget": cfg.milp.budget,
        "max_experts": cfg.milp.max_experts,
        "fixed": cfg.milp.fixed,
        "k_shot": sc.k_shot,
        "dev_questions": len(dev),
        "answer_prior": sc.answer_prior,
        "letter_priors": scorer.describe(),
        "shrinkage": sc.shrinkage,
        "category_signal": table.signal(),
        "scores": table.as_dict(),
        "expected_score": sol.expected_score,
        "avg_params_b": sol.avg_params,
        **tau_stats,
    }
    meta = {
        **art.meta,
        "category_map": new_map,
        "tau_entropy": tau,
        "map_source": map_source,
        "tau_rule": MEASURED_TAU_RULE,
    }
    old = read_manifest(artifact_dir)
    command = command or f"python -m routers.train.category_map --config {config_path} --artifact {artifact_dir}"
    save_artifact(
        artifact_dir,
        ARTIFACT_KIND,
        ARTIFACT_VERSION,
        art.arrays,
        meta,
        training_data=old.get("training_data", {}),
        command=f"{old.get('command', '')} && {command}" if append_command else command,
    )
    return map_source | {"category_map": new_map, "tau_entropy": tau}


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    from experts.embed.encoders import make_encoder
    from routers.train.embed_cache import CachedEncoder

    parser = argparse.ArgumentParser(description="Fit the CoE category→expert map (MILP over expert scores)")
    parser.add_argument("--config", default="configs/train/coe.yaml")
    parser.add_argument("--artifact", default="artifacts/coe-router")
    parser.add_argument("--limit", type=int, default=None, help="dev questions per subject")
    args = parser.parse_args(argv)
    ref = str(load_artifact(args.artifact, ARTIFACT_KIND, ARTIFACT_VERSION).meta.get("encoder")
              or load_train_config(args.config).encoder)  # the encoder the artifact was trained with
    encoder = CachedEncoder(make_encoder(ref, threads=None), ref)
    summary = asyncio.run(fit_category_map(args.config, args.artifact, encoder, limit=args.limit))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
