"""`coe bench memory`: trace replay of eviction/prefetch/scheduling choices, and measured swap bandwidths.

Trace replay compares (a) LRU, no prefetch, FIFO order; (b) cost-aware + prefetch; (c) (b) + expert-affinity
scheduling, on 1,000 routed requests (Zipf(1.1) popularity with bursts) and a device budget of about two
experts. The bandwidth bench moves a ~100M-parameter random Llama between tiers with the real torch helpers
and reports each move's bandwidth as a fraction of the raw file read / memcpy of the same bytes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from eval.memory_replay import GB, ReplayConfig, TraceSpec, make_trace, replay_simulated
from eval.stats import print_table, write_json
from experts.memory import TierBudgets

ARMS = (
    ReplayConfig("(a) LRU, FIFO", policy="lru", prefetch=False, order="fifo"),
    ReplayConfig("(b) cost-aware + prefetch, FIFO", policy="cost_aware", prefetch=True, order="fifo"),
    ReplayConfig("(c) (b) + expert affinity", policy="cost_aware", prefetch=True, order="affinity",
                 max_skips=32, max_wait_s=20.0),
)


def run_trace_replay(spec: TraceSpec | None = None, device_bytes: int = 4 * GB,
                     host_bytes: int | None = 8 * GB,
                     service_s: float = 0.25, workers: int = 1, bandwidth: Mapping[str, float] | None = None,
                     arms: tuple[ReplayConfig, ...] = ARMS, json_path: str | None = None,
                     show: bool = True) -> list[dict[str, Any]]:
    """Replays one trace under each arm; returns (and prints) one row of headline figures per arm."""
    spec = spec or TraceSpec()
    trace = make_trace(spec)
    budgets = TierBudgets(device=device_bytes, host=host_bytes, acquire_timeout_s=600.0)
    rows = [replay_simulated(trace, spec.experts, arm, budgets, service_s, workers, bandwidth).row()
            for arm in arms]
    if show:
        cols = list(rows[0])
        host = f"{host_bytes / GB:g} GB" if host_bytes is not None else "unbounded"
        title = (f"trace replay: {spec.n_requests} requests, {len(spec.experts)} experts, "
                 f"{workers} worker(s), device {device_bytes / GB:g} GB, host {host}")
        print_table(title, cols, [[r[c] for c in cols] for r in rows])
    write_json(json_path, {"trace_replay": rows})
    return rows


def _drop_page_cache(files: list[Path]) -> bool:
    """Evicts the files from the page cache (POSIX_FADV_DONTNEED) so a read really hits the disk."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def _best_of(fn: Callable[[], Any], reps: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(reps):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_swap_bandwidth(hidden: int = 768, layers: int = 12, vocab: int = 32000, reps: int = 3,
                           json_path: str | None = None, show: bool = True) -> list[dict[str, Any]]:
    """Each real tier move of a random Llama (~110M params, bf16) vs the raw operation on the same bytes:
    a cold file read for disk->host, a memcpy for the host moves. ratio = move bandwidth / raw bandwidth."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from experts.memory import torch_moves as tm

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                      num_hidden_layers=layers, num_attention_heads=hidden // 64, tie_word_embeddings=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def factory() -> torch.nn.Module:
        return LlamaForCausalLM(cfg)

    model = factory().to(torch.bfloat16).eval()
    nbytes = tm.nbytes(model)
    extra = tm.non_persistent_buffers(model)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        files = sorted(Path(tmp).glob("*.safetensors"))
        raw_read = _best_of(lambda: [f.read_bytes() for f in files], reps, lambda: _drop_page_cache(files))
        disk_host = _best_of(lambda: tm.load_from_disk(factory, files, extra), reps,
                             lambda: _drop_page_cache(files))
        rows.append(_row("disk->host", nbytes, disk_host, raw_read, "cold file read"))
    flat = torch.empty(nbytes, dtype=torch.uint8).fill_(1)
    memcpy = _best_of(lambda: torch.empty_like(flat).copy_(flat), reps)
    state = tm.capture(model, pin=True)
    host_dev = _best_of(lambda: tm.to_device(tm.restore(tm.meta_module(factory), state), device), reps)
    on_device = tm.to_device(tm.restore(tm.meta_module(factory), state), device)
    dev_host = _best_of(lambda: tm.capture(on_device, pin=True), reps)
    rows.append(_row("host->device", nbytes, host_dev, memcpy, "memcpy"))
    rows.append(_row("device->host", nbytes, dev_host, memcpy, "memcpy"))
    if show:
        cols = list(rows[0])
        print_table(f"swap bandwidth: {nbytes / 1e6:.0f} MB bf16 Llama on {device}", cols,
                    [[r[c] for c in cols] for r in rows])
    write_json(json_path, {"swap_bandwidth": rows})
    return rows


def _row(kind: str, nbytes: int, move_s: float, raw_s: float, raw: str) -> dict[str, Any]:
    return {"move": kind, "MB": nbytes / 1e6, "move_s": move_s, "move_GB_per_s": nbytes / move_s / 1e9,
            "raw": raw, "raw_GB_per_s": nbytes / raw_s / 1e9, "ratio": raw_s / move_s}


def headline(bandwidth: list[dict[str, Any]], replay: list[dict[str, Any]]) -> dict[str, float]:
    """The flat JSON keys of `coe bench memory --json` (arm (a) is LRU/FIFO, arm (c) adds affinity)."""
    lru, affinity = replay[0], replay[-1]
    return {"min_swap_bandwidth_ratio": min(r["ratio"] for r in bandwidth),
            "swaps_per_request_lru": lru["swaps_per_request"],
            "swaps_per_request_affinity": affinity["swaps_per_request"],
            "p99_ms_lru": lru["p99_s"] * 1000, "p99_ms_affinity": affinity["p99_s"] * 1000,
            "hit_rate_affinity": affinity["device_hit_rate"]}


def plot_replay(rows: list[dict[str, Any]], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = [r["config"].split(" ")[0] for r in rows]
    axes[0].bar(labels, [r["swaps_per_request"] for r in rows])
    axes[0].set_title("swaps per request")
    axes[1].bar(labels, [r["p99_s"] for r in rows])
    axes[1].set_title("p99 latency (s)")
    fig.suptitle("trace replay: (a) LRU+FIFO, (b) cost-aware+prefetch, (c) (b)+affinity")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_memory_bench(json_path: str | None = None, plot_path: str | None = None) -> dict[str, Any]:
    """`coe bench memory`: swap bandwidths, then the trace replay; JSON headline keys and a PNG plot."""
    bandwidth = measure_swap_bandwidth()
    replay = run_trace_replay()
    result = headline(bandwidth, replay)
    print_table("coe bench memory (headline)", ["metric", "value"], [[k, v] for k, v in result.items()])
    write_json(json_path, result | {"swap_bandwidth": bandwidth, "trace_replay": replay})
    if plot_path or json_path:
        plot_replay(replay, plot_path or str(Path(str(json_path)).with_suffix(".png")))
    return result


if __name__ == "__main__":
    run_memory_bench()
    run_trace_replay(workers=2)  # lighter load: shorter queues leave affinity less to batch
