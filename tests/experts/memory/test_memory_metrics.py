"""Memory metrics: lookup hits/misses per tier, move histograms, and the Prometheus collector's output."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from experts.memory import TierBudgets, TierManager
from experts.memory.metrics import MemoryMetrics, MoveHistogram, prometheus_collector
from experts.memory.simulate import run_virtual


def test_lookup_is_a_hit_where_found_and_a_miss_above():
    m = MemoryMetrics()
    for tier in ("device", "host", "disk", "disk"):
        m.record_lookup(tier)
    assert m.hits == {"device": 1, "host": 1, "disk": 2}
    assert m.misses == {"device": 3, "host": 2}


def test_move_histogram_is_cumulative():
    h = MoveHistogram(bounds=(0.1, 1.0, 10.0), counts=[0, 0, 0])
    for s in (0.05, 0.1, 0.5, 20.0):
        h.observe(s)
    assert (h.counts, h.total, h.sum_s) == ([2, 3, 3], 4, 20.65)


def test_prometheus_collector_exports_a_manager_snapshot(make_experts):
    xs = make_experts({"a": 2, "b": 2})
    m = TierManager(TierBudgets(device=2, host=4))
    for name, x in xs.items():
        m.register(name, x)

    async def main():
        for name in ("a", "b", "b"):
            async with m.acquire(name):
                pass

    run_virtual(main())
    registry = CollectorRegistry()
    registry.register(prometheus_collector(m))
    text = generate_latest(registry).decode()
    for line in [
        'coe_memory_resident_experts{pool="default",tier="device"} 1.0',
        'coe_memory_resident_bytes{pool="default",tier="host"} 2.0',
        'coe_memory_budget_bytes{pool="default",tier="device"} 2.0',
        'coe_memory_hits_total{pool="default",tier="device"} 1.0',
        'coe_memory_hits_total{pool="default",tier="disk"} 2.0',
        'coe_memory_misses_total{pool="default",tier="device"} 2.0',
        'coe_memory_moved_bytes_total{kind="disk->device",pool="default"} 4.0',
        'coe_memory_evictions_total{pool="default",tier="device"} 1.0',
        'coe_memory_move_seconds_bucket{kind="disk->device",le="2.5",pool="default"} 2.0',
        'coe_memory_move_seconds_bucket{kind="disk->device",le="1.0",pool="default"} 0.0',
        'coe_memory_move_seconds_count{kind="device->host",pool="default"} 1.0',
        'coe_memory_pins{pool="default"} 0.0',
        'coe_memory_waits_total{pool="default"} 0.0',
    ]:
        assert line in text.splitlines(), line
