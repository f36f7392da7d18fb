"""Held-out quality of a trained CoE router: accuracy per category and super-category, MT-Bench, ECE."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from routers.base import RouteDecision
from routers.train.calibration import expected_calibration_error
from routers.train.config import CoETrainConfig
from routers.train.datasets import LabelledText


def _acc(mask: np.ndarray, correct: np.ndarray) -> dict[str, float | int | None]:
    n = int(mask.sum())
    return {"n": n, "accuracy": round(float(correct[mask].mean()), 4) if n else None}


def heldout_metrics(
    cfg: CoETrainConfig,
    examples: list[LabelledText],
    probs: np.ndarray,
    decisions: list[RouteDecision],
    categories: list[str],
    ece_bins: int,
    category_map: Mapping[str, str],
) -> dict[str, Any]:
    """Category accuracy (argmax of π, fallback or not), expert agreement with the map, fallback rate, ECE."""
    labels = np.array([categories.index(x.category) for x in examples])
    pred = probs.argmax(axis=1)
    correct = pred == labels
    source = np.array([x.source for x in examples])
    cats = np.array([x.category for x in examples])
    supers = np.array([cfg.super_category_of(c) for c in cats])
    pred_supers = np.array([cfg.super_category_of(categories[k]) for k in pred])
    super_correct = pred_supers == supers  # right super-category, whichever of its categories was predicted
    mmlu = source == "mmlu"
    fallback = np.array([d.category is None for d in decisions])
    true_expert = [category_map.get(c, cfg.general_expert) for c in cats]
    expert_ok = np.array([d.expert == e for d, e in zip(decisions, true_expert, strict=True)])
    return {
        "n": len(examples),
        "mmlu_category_accuracy": _acc(mmlu, correct),
        "mt_bench_category_accuracy": _acc(~mmlu, correct),
        "per_super_category_mmlu": {s: _acc(mmlu & (supers == s), correct) for s in cfg.super_categories},
        "mmlu_super_category_accuracy": _acc(mmlu, super_correct),
        "per_super_category_mmlu_super_level": {s: _acc(mmlu & (supers == s), super_correct)
                                                for s in cfg.super_categories},
        "per_category": {c: _acc(cats == c, correct) for c in categories},
        "fallback_rate": round(float(fallback.mean()), 4),
        "expert_agreement": round(float(expert_ok.mean()), 4),
        "ece": round(expected_calibration_error(probs, labels, ece_bins), 4),
    }


def render_markdown(report: dict[str, Any]) -> str:
    """A short human-readable version of report.json."""
    h = report["heldout"]
    cal = report["calibration"]
    lines = [
        "# CoE router training report",
        "",
        f"- command: `{report['command']}`",
        f"- examples: train {report['sizes']['train']}, dev {report['sizes']['dev']}, "
        f"heldout {report['sizes']['heldout']}; classifier C = {report['classifier']['C']}",
        f"- temperature T = {cal['temperature']:.3f}; "
        f"dev ECE {cal['ece_before']:.4f} → {cal['ece_after']:.4f}, "
        f"NLL {cal['nll_before']:.4f} → {cal['nll_after']:.4f}; held-out ECE (calibrated) {h['ece']:.4f}",
        f"- τ (entropy, nats) = {report['fallback']['tau']:.3f}: {report['fallback']['rule']}; "
        f"dev fallback rate {report['fallback']['fallback_rate']:.3f}, held-out {h['fallback_rate']:.3f}",
        f"- held-out MMLU category accuracy {h['mmlu_category_accuracy']['accuracy']:.4f} "
        f"(n={h['mmlu_category_accuracy']['n']}), MT-Bench {h['mt_bench_category_accuracy']['accuracy']:.4f} "
        f"(n={h['mt_bench_category_accuracy']['n']}); routed expert = map[true category] for "
        f"{h['expert_agreement']:.4f}",
        f"- training time {report['seconds']['total']:.1f} s ({report['seconds']})",
        "",
        "| super-category (MMLU held-out) | n | category accuracy | super-category accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    level = h["per_super_category_mmlu_super_level"]
    lines += [f"| {s} | {v['n']} | {v['accuracy']:.4f} | {level[s]['accuracy']:.4f} |"
              for s, v in h["per_super_category_mmlu"].items() if v["n"]]
    lines += ["", "| category | n | accuracy |", "| --- | ---: | ---: |"]
    lines += [f"| {c} | {v['n']} | {v['accuracy']:.4f} |" for c, v in h["per_category"].items() if v["n"]]
    return "\n".join(lines + _map_lines(report["category_map"])) + "\n"


def _map_lines(section: dict[str, Any]) -> list[str]:
    """The category→expert map and, when it was fitted, what it was fitted on."""
    lines = ["", f"## Category → expert map ({section['source']})", ""]
    fit = section.get("fit")
    if fit:
        budget = "none" if fit["budget"] is None else f"{fit['budget']} B"
        lines += [
            f"- MILP on {fit['dev_questions']} dev questions ({fit['k_shot']}-shot), budget {budget}: "
            f"expected dev score {fit['expected_score']:.4f} at {fit['avg_params_b']:.3f} B average active params",
            f"- answer-letter prior: {fit['answer_prior']}; shrinkage: {fit['shrinkage']}; "
            f"τ re-chosen on measured scores = {fit['tau_entropy']:.3f} (dev accuracy {fit['dev_accuracy']:.4f}, "
            f"fallback rate {fit['dev_fallback_rate']:.3f})",
        ]
        if fit.get("category_signal"):
            lines += ["", "| expert | dev accuracy | between-category SD | sampling SD |",
                      "| --- | ---: | ---: | ---: |"]
            lines += [f"| {e} | {s['mean']:.4f} | {s['between_sd']:.4f} | {s['sampling_sd']:.4f} |"
                      for e, s in fit["category_signal"].items()]
    lines += ["", "| category | expert |", "| --- | --- |"]
    lines += [f"| {c} | {e} |" for c, e in sorted(section["map"].items())]
    return lines


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
