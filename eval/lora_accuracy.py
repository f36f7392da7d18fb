"""Task metric of the trained LoRA experts before and after ComPEFT: 4-way title accuracy and answer nats.

Each expert (artifacts/lora-experts/<task>) is scored on its own task's held-out items (experts/llm/tasks.py)
through the multi-LoRA runtime, once dense and once per density; the plain base model is the reference that
shows the adapter matters. Differences are paired (the same items), so they are far less noisy than the
accuracies themselves.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experts.llm import tasks
from experts.llm.choice_scoring import score_choices
from experts.llm.lora_experts import LoraExpert, load_lora_expert
from experts.lora.artifact import compress_expert, load_any_expert
from experts.lora.runtime import MultiLoraModel
from experts.paths import REPO_ROOT

TRAINED = REPO_ROOT / "artifacts" / "lora-experts"


def item_scores(runtime: MultiLoraModel, slot: int, items: Sequence[tasks.ChoiceItem]) -> tuple[np.ndarray, np.ndarray]:
    """Per item: right (1/0, best choice per character) and the right answer's nats per token, on one slot."""
    right, nats = [], []
    runtime.rows.set([slot])
    try:
        for it in items:
            s = score_choices(runtime.model, runtime.tok, it.prompt, it.choices)
            right.append(float(s.best == it.answer))
            nats.append(-s.logprob[it.answer] / s.tokens[it.answer])
    finally:
        runtime.rows.set([0])
    return np.array(right), np.array(nats)


def evaluate_compression(runtime: MultiLoraModel, densities: Sequence[float], limit: int,
                         experts_dir: Path = TRAINED) -> dict[str, Any]:
    """Accuracy (%) and nats per expert: base, dense, and each density; sizes and paired deltas."""
    folders = sorted(p for p in experts_dir.iterdir() if (p / "manifest.json").is_file())
    out: dict[str, Any] = {"items_per_task": limit, "experts": {}}
    scratch = Path(tempfile.mkdtemp(prefix="coe-lora-acc-"))
    for folder in folders:
        dense = load_lora_expert(folder)
        items = tasks.choice_items(str(dense.meta.get("task", folder.name)), limit=limit)
        base_r, base_n = item_scores(runtime, 0, items)
        dense_r, dense_n = _scored(runtime, dense, items)
        row: dict[str, Any] = {"base": _summary(base_r, base_n), "dense": _summary(dense_r, dense_n),
                               "densities": {}}
        for d in densities:
            report = compress_expert(folder, scratch / f"{folder.name}-{d:g}", density=d)
            r, n = _scored(runtime, load_any_expert(report["out"]), items)
            row["densities"][f"{d:g}"] = {**_summary(r, n), "ratio": report["ratio"],
                                         "accuracy_delta_points": round(100 * float((r - dense_r).mean()), 2),
                                         "nats_change_pct": round(100 * float(n.mean() / dense_n.mean() - 1), 2)}
        out["experts"][folder.name] = row
    rows = list(out["experts"].values())
    out["mean"] = {f"{d:g}": {k: round(float(np.mean([e["densities"][f"{d:g}"][k] for e in rows])), 3)
                              for k in ("accuracy_delta_points", "nats_change_pct", "ratio")} for d in densities}
    return out


def _scored(runtime: MultiLoraModel, expert: LoraExpert, items: Sequence[tasks.ChoiceItem]) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    runtime.load_slot(1, runtime.host_copy(expert), expert.scaling)
    return item_scores(runtime, 1, items)


def _summary(right: np.ndarray, nats: np.ndarray) -> dict[str, float]:
    return {"accuracy": round(100 * float(right.mean()), 2), "answer_nats": round(float(nats.mean()), 4)}


def load_times(folder: Path, compressed: Path, runtime: MultiLoraModel, rounds: int = 5) -> dict[str, float]:
    """Median ms from a verified artifact on disk (page cache dropped) into a device slot, dense vs compressed."""
    from eval.bench_lora import drop_page_cache

    out = {}
    for label, path in (("dense", folder), ("compressed", compressed)):
        samples = []
        for _ in range(rounds):
            drop_page_cache([path])
            t0 = time.perf_counter()
            e = load_any_expert(path)
            runtime.load_slot(1, runtime.host_copy(e), e.scaling)
            samples.append(time.perf_counter() - t0)
        out[f"{label}_disk_to_device_ms"] = round(1000 * float(np.median(samples)), 2)
    return out
