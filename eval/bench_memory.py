"""`coe bench memory`: trace replay of eviction/prefetch/scheduling choices, and measured swap bandwidths.

Trace replay compares (a) LRU, no prefetch, FIFO order; (b) cost-aware + prefetch; (c) (b) + expert-affinity
scheduling, on 1,000 routed requests (Zipf(1.1) popularity with bursts) and a device budget of about two
experts. The bandwidth bench moves a ~100M-parameter random Llama between tiers with the real torch helpers
and reports each move's bandwidth as a fraction of the raw file read / memcpy of the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
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


if __name__ == "__main__":
    run_trace_replay()
    run_trace_replay(workers=2)  # lighter load: shorter queues leave affinity less to batch
