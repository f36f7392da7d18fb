"""The trace replay: the trace's shape, and the headline claim of expert-affinity scheduling on it."""

from __future__ import annotations

from collections import Counter

import pytest

from eval.bench_memory import ARMS, run_trace_replay
from eval.memory_replay import GB, ReplayConfig, TraceSpec, make_trace, replay_simulated
from experts.memory import TierBudgets


def test_trace_is_zipf_ordered_bursty_and_reproducible():
    spec = TraceSpec()
    trace = make_trace(spec)
    assert trace == make_trace(spec) and len(trace) == 1000
    counts = Counter(r.expert for r in trace)
    assert counts.most_common(1)[0][0] == "general" and len(counts) == 6
    assert all(b.arrival_s > a.arrival_s for a, b in zip(trace, trace[1:], strict=False))


def test_affinity_cuts_swaps_to_a_third_at_no_worse_p99():
    a, b, c = run_trace_replay(show=False)
    assert [r["config"] for r in (a, b, c)] == [arm.label for arm in ARMS]
    assert c["swaps_per_request"] <= a["swaps_per_request"] / 3
    assert c["p99_s"] <= a["p99_s"]
    assert all(r["rejected"] == 0 for r in (a, b, c))


def test_two_workers_replay_serves_everything_without_deadlock():
    spec = TraceSpec(n_requests=300)
    budgets = TierBudgets(device=4 * GB, host=8 * GB, acquire_timeout_s=600.0)
    arm = ReplayConfig("c", policy="cost_aware", prefetch=True, order="affinity")
    result = replay_simulated(make_trace(spec), spec.experts, arm, budgets, service_s=0.25, workers=2)
    assert (len(result.latencies_s), result.busy, result.rejected) == (300, 0, 0)
    assert result.snapshot["bytes"]["device"] <= 4 * GB


def test_swap_bandwidth_reports_each_move_against_its_raw_operation():
    from eval.bench_memory import measure_swap_bandwidth

    rows = measure_swap_bandwidth(hidden=64, layers=1, vocab=512, reps=1, show=False)
    assert [(r["move"], r["raw"]) for r in rows] == [
        ("disk->host", "cold file read"), ("host->device", "memcpy"), ("device->host", "memcpy")]
    assert [r["ratio"] for r in rows] == pytest.approx([r["move_GB_per_s"] / r["raw_GB_per_s"] for r in rows])
