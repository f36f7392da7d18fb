"""`coe bench lora`: hundreds of LoRA adapters on one base model (SmolLM2-135M, r = 16 on every linear layer).

1. `adapters` random adapters (timing only: random weights are fine) are written dense (float16, as `coe train
   lora-expert` writes them) and ComPEFT-compressed, then served from K device slots + host copies + disk
   through the AdapterStore: every adapter once (shuffled), then a Zipf(1.0) trace. Each file's page cache is
   dropped first (posix_fadvise), so "disk" is a read from the disk. The cold overhead is the time a request
   waits in `acquire` for an adapter that was on disk, dense vs compressed in the same run.
2. Mixed batches: 8 requests over 8 resident adapters decode as one batch vs one adapter at a time.
3. The task metric (4-way title accuracy, answer nats) of the trained experts before and after compression
   (eval/lora_accuracy.py), and their disk → device time dense vs compressed.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.stats import percentile_ms, print_table, write_json
from experts.embed.adapters import LoraSpec
from experts.llm.lora_experts import ALL_LINEAR
from experts.lora.artifact import compress_expert, folder_bytes
from experts.lora.batcher import MixedBatcher
from experts.lora.runtime import BatchRow, MultiLoraModel
from experts.lora.store import AdapterStore
from experts.train.llm_lora import LoraExpertTrainConfig, save_lora_expert

PROMPTS = ["Text: the flutter of a swept wing was measured at several Mach numbers\nTitle:",
           "Text: a survey of how readers search a library catalogue\nTitle:",
           "Claim: vitamin D lowers the risk of fractures\nTitle of the study:"]


@dataclass(frozen=True)
class BenchLoraConfig:
    base: str = "registry:smollm2-135m-instruct"
    adapters: int = 200
    requests: int = 200
    rank: int = 16
    max_loras: int = 8
    max_cpu_loras: int = 16
    density: float = 0.0  # 0: the smallest density of `densities` within the accuracy goals
    zipf_s: float = 1.0
    eval_items: int = 60
    densities: tuple[float, ...] = (0.1, 0.3, 0.5)
    workdir: str | None = None
    seed: int = 0


def drop_page_cache(folders: list[Path]) -> None:
    """Evicts these files (only) from the page cache, so the next read comes from the disk."""
    for folder in folders:
        for f in Path(folder).iterdir():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def load_base(ref: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from coe.serve.backends import resolve_model_ref

    path = resolve_model_ref(ref)
    tok = AutoTokenizer.from_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), tok


def write_adapters(model: Any, folder: Path, cfg: BenchLoraConfig) -> tuple[list[Path], list[Path]]:
    """`cfg.adapters` random r-`cfg.rank` adapters on every linear layer, dense and compressed (kept if present)."""
    from torch import nn

    shapes = {n: (m.in_features, m.out_features) for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n.rpartition(".")[2] in ALL_LINEAR}
    rng = np.random.default_rng(cfg.seed)
    train = LoraExpertTrainConfig(lora=LoraSpec(r=cfg.rank, alpha=2 * cfg.rank, dropout=0.0,
                                                target_modules=list(ALL_LINEAR)))
    dense, small = [], []
    for i in range(cfg.adapters):
        d, c = folder / f"dense-{i:03d}", folder / f"compeft-{cfg.density:g}-{i:03d}"
        if not (d / "manifest.json").is_file():
            weights = {}
            for name, (d_in, d_out) in shapes.items():
                weights[f"{name}.lora_A"] = rng.normal(0, 0.02, (cfg.rank, d_in)).astype(np.float32)
                weights[f"{name}.lora_B"] = rng.normal(0, 0.02, (d_out, cfg.rank)).astype(np.float32)
            save_lora_expert(d, weights, train, {"name": f"adapter-{i:03d}", "base_model": cfg.base})
        if not (c / "manifest.json").is_file():
            compress_expert(d, c, density=cfg.density)
        dense.append(d)
        small.append(c)
        if i % 25 == 0:
            print(f"  adapters written: {i + 1}/{cfg.adapters}", flush=True)
    return dense, small


def zipf_trace(n_adapters: int, requests: int, s: float, seed: int) -> list[int]:
    """Every adapter once (shuffled), then `requests` Zipf(s)-distributed picks over a shuffled popularity order."""
    rng = random.Random(seed)
    first = list(range(n_adapters))
    rng.shuffle(first)
    popular = list(range(n_adapters))
    rng.shuffle(popular)
    weights = [1.0 / (k + 1) ** s for k in range(n_adapters)]
    return first + [popular[k] for k in rng.choices(range(n_adapters), weights=weights, k=requests)]


async def serve_trace(runtime: MultiLoraModel, paths: list[Path], trace: list[int], cfg: BenchLoraConfig,
                      tok: Any) -> dict[str, Any]:
    """Requests one after another through the store and batcher; the wait in acquire by where the adapter was."""
    store = AdapterStore(runtime, host_adapters=cfg.max_cpu_loras, acquire_timeout_s=120)
    for i, p in enumerate(paths):
        store.register(f"a{i}", p)
    batcher = MixedBatcher(runtime, window_s=0.0)
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    waits: dict[str, list[float]] = {"disk": [], "host": [], "device": []}
    served: set[int] = set()
    drop_page_cache(paths)
    for n, k in enumerate(trace):
        found = store.handles[f"a{k}"].tier
        t0 = time.perf_counter()
        async with store.acquire(f"a{k}") as slot:
            waits[found].append(time.perf_counter() - t0)
            result = await batcher.submit(BatchRow(slot, prompts[n % len(prompts)], 1))
        if result.token_ids:
            served.add(k)
    snap = store.residency()
    return {"served": len(served), "requests": len(trace), "waits": waits, "resident": snap["residency"]["device"],
            "slots": snap["slots"], "snapshot": snap}


def mixed_batch_speedup(runtime: MultiLoraModel, tok: Any, n: int = 8, tokens: int = 32) -> dict[str, float]:
    """tokens/s of n requests on n different resident slots: one mixed batch vs one adapter (request) at a time."""
    rows = [BatchRow(1 + i % runtime.slots, tok(PROMPTS[i % len(PROMPTS)])["input_ids"], tokens) for i in range(n)]
    runtime.generate_batch(rows[:2])  # warm-up
    best_mixed = best_single = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        mixed = runtime.generate_batch(rows)
        best_mixed = min(best_mixed, time.perf_counter() - t0)
        t0 = time.perf_counter()
        single = [runtime.generate_batch([r])[0] for r in rows]
        best_single = min(best_single, time.perf_counter() - t0)
    n_mixed, n_single = sum(len(r.token_ids) for r in mixed), sum(len(r.token_ids) for r in single)
    return {"mixed_tokens_per_s": round(n_mixed / best_mixed, 2),
            "single_tokens_per_s": round(n_single / best_single, 2),
            "mixed_batch_speedup": round((n_mixed / best_mixed) / (n_single / best_single), 3),
            "same_tokens": float(all(a.token_ids == b.token_ids for a, b in zip(mixed, single, strict=True)))}


def choose_density(acc: dict[str, Any], max_points: float = 1.0, max_nats_pct: float = 2.0) -> float:
    """The smallest measured density whose mean accuracy loss is within `max_points` and nats within the %."""
    ok = [float(d) for d, m in acc["mean"].items()
          if m["accuracy_delta_points"] >= -max_points and m["nats_change_pct"] <= max_nats_pct]
    return min(ok) if ok else max(float(d) for d in acc["mean"])


def run(cfg: BenchLoraConfig, json_path: str | None = None) -> dict[str, Any]:
    """Accuracy first (it chooses the density when cfg.density is 0), then the trace runs and the batch speed."""
    from eval.lora_accuracy import TRAINED, evaluate_compression, load_times

    report: dict[str, Any] = {"base": cfg.base}
    density = cfg.density
    if cfg.eval_items:
        model, tok = load_base(cfg.base)
        runtime_eval = MultiLoraModel(model, tok, slots=1, rank=4)
        acc = evaluate_compression(runtime_eval, sorted({*cfg.densities} | ({density} if density else set())),
                                   cfg.eval_items)
        density = density or choose_density(acc)
        chosen = acc["mean"][f"{density:g}"]
        first = sorted(p for p in TRAINED.iterdir() if (p / "manifest.json").is_file())[0]
        scratch = Path(tempfile.mkdtemp(prefix="coe-bench-lora-trained-"))
        c = compress_expert(first, scratch / f"{first.name}-{density:g}", density=density)
        report.update({"accuracy_delta_points": chosen["accuracy_delta_points"],
                       "answer_nats_change_pct": chosen["nats_change_pct"],
                       "trained_compression_ratio": chosen["ratio"], "accuracy": acc,
                       "trained_load_ms": {first.name: load_times(first, Path(c["out"]), runtime_eval)}})
        print(f"  accuracy sweep done; density {density:g}", flush=True)
    density = density or 0.5
    cfg = BenchLoraConfig(**{**cfg.__dict__, "density": density})
    model, tok = load_base(cfg.base)
    folder = Path(cfg.workdir or tempfile.mkdtemp(prefix="coe-bench-lora-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"writing {cfg.adapters} random r={cfg.rank} adapters under {folder}", flush=True)
    dense, small = write_adapters(model, folder, cfg)  # before wrapping: shapes come from the plain linears
    runtime = MultiLoraModel(model, tok, slots=cfg.max_loras, rank=cfg.rank)
    trace = zipf_trace(cfg.adapters, cfg.requests, cfg.zipf_s, cfg.seed)
    runs = {}
    for label, paths in (("dense", dense), ("compressed", small)):
        t0 = time.perf_counter()
        runs[label] = asyncio.run(serve_trace(runtime, paths, trace, cfg, tok))
        print(f"  {label} trace: {len(trace)} requests in {time.perf_counter() - t0:.0f} s", flush=True)
    speed = mixed_batch_speedup(runtime, tok)
    ratios = [folder_bytes(d) / folder_bytes(c) for d, c in zip(dense, small, strict=True)]
    report.update({
        "config": dict(cfg.__dict__), "density": density,
        "adapters_registered": cfg.adapters,
        "adapters_served": min(runs["dense"]["served"], runs["compressed"]["served"]),
        "resident_adapters": runs["compressed"]["resident"], "device_slots": cfg.max_loras,
        "cold_adapter_overhead_p50_ms": round(percentile_ms(runs["dense"]["waits"]["disk"], 50), 2),
        "cold_compressed_adapter_overhead_p50_ms": round(percentile_ms(runs["compressed"]["waits"]["disk"], 50), 2),
        "host_adapter_overhead_p50_ms": round(percentile_ms(runs["dense"]["waits"]["host"], 50), 2),
        "host_compressed_adapter_overhead_p50_ms": round(percentile_ms(runs["compressed"]["waits"]["host"], 50), 2),
        "cold_requests": {k: len(r["waits"]["disk"]) for k, r in runs.items()},
        "compression_ratio": round(float(np.mean(ratios)), 3),
        "adapter_bytes": {"dense": folder_bytes(dense[0]), "compressed": folder_bytes(small[0])},
        **speed,
        "memory": {k: {kk: r["snapshot"][kk] for kk in ("moves", "evictions", "hits", "misses")}
                   for k, r in runs.items()},
    })
    print_report(report)
    write_json(json_path, report)
    return report


def print_report(r: dict[str, Any]) -> None:
    keys = ["adapters_served", "resident_adapters", "cold_adapter_overhead_p50_ms",
            "cold_compressed_adapter_overhead_p50_ms", "host_adapter_overhead_p50_ms", "compression_ratio",
            "mixed_batch_speedup", "mixed_tokens_per_s", "single_tokens_per_s", "accuracy_delta_points",
            "answer_nats_change_pct", "trained_compression_ratio"]
    print_table("coe bench lora", ["figure", "value"], [[k, r[k]] for k in keys if k in r])
    if "accuracy" in r:
        rows = []
        for name, e in r["accuracy"]["experts"].items():
            rows.append([name, "base", e["base"]["accuracy"], e["base"]["answer_nats"], "", ""])
            rows.append([name, "dense", e["dense"]["accuracy"], e["dense"]["answer_nats"], "", ""])
            for d, x in e["densities"].items():
                rows.append([name, f"D={d}", x["accuracy"], x["answer_nats"], x["accuracy_delta_points"], x["ratio"]])
        print_table(f"task metric ({r['accuracy']['items_per_task']} items per task)",
                    ["expert", "weights", "accuracy %", "answer nats", "Δ points", "size ratio"], rows)
