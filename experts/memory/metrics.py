"""Plain counters of the memory layer, and a Prometheus collector the serving layer registers on /metrics."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# Upper bounds (seconds) of the move-duration histogram: from a host copy of a small model to a cold load.
MOVE_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class MoveHistogram:
    """Cumulative-bucket histogram in the Prometheus sense (counts[i] = moves no longer than bounds[i])."""

    bounds: tuple[float, ...] = MOVE_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * len(MOVE_BUCKETS_S))
    total: int = 0
    sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        for i in range(bisect.bisect_left(self.bounds, seconds), len(self.bounds)):
            self.counts[i] += 1
        self.total += 1
        self.sum_s += seconds


@dataclass
class MemoryMetrics:
    """Counters the manager bumps; gauges (residency, bytes, pins) are read from it at snapshot time."""

    hits: Counter[str] = field(default_factory=Counter)  # tier where an acquire found the expert
    misses: Counter[str] = field(default_factory=Counter)  # tier that did not have it
    bytes_moved: Counter[str] = field(default_factory=Counter)  # per move kind, e.g. "host->device"
    moves: Counter[str] = field(default_factory=Counter)
    move_seconds: dict[str, MoveHistogram] = field(default_factory=dict)
    evictions: Counter[str] = field(default_factory=Counter)  # per tier evicted from
    prefetches: int = 0
    waits: int = 0  # acquires that had to wait for room
    wait_seconds: float = 0.0
    busy_errors: int = 0

    def record_move(self, kind: str, nbytes: int, seconds: float) -> None:
        self.bytes_moved[kind] += nbytes
        self.moves[kind] += 1
        self.move_seconds.setdefault(kind, MoveHistogram()).observe(seconds)

    def record_lookup(self, found: str) -> None:
        """An acquire found the expert in `found`: a hit there, a miss in every tier above it."""
        for tier in ("device", "host", "disk"):
            if tier == found:
                self.hits[tier] += 1
                return
            self.misses[tier] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": dict(self.hits), "misses": dict(self.misses), "bytes_moved": dict(self.bytes_moved),
            "moves": dict(self.moves), "evictions": dict(self.evictions), "prefetches": self.prefetches,
            "waits": self.waits, "wait_seconds": self.wait_seconds, "busy_errors": self.busy_errors,
            "move_seconds": {k: {"buckets": dict(zip(h.bounds, h.counts, strict=True)), "count": h.total,
                                 "sum": h.sum_s} for k, h in self.move_seconds.items()},
        }


class HasSnapshot(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


class _Collector:
    """Turns snapshots of one or more managers (by pool) into Prometheus families at scrape time."""

    def __init__(self, sources: dict[str, HasSnapshot], prefix: str) -> None:
        self.sources = sources
        self.prefix = prefix

    def describe(self) -> list[Any]:
        return []  # families are only known at scrape time; an empty describe keeps registration lazy

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        snaps, p = {pool: src.snapshot() for pool, src in self.sources.items()}, self.prefix
        gauges = [("resident_experts", "experts resident per tier", "residency"),
                  ("resident_bytes", "bytes of expert weights per tier", "bytes"),
                  ("budget_bytes", "byte budget per tier (absent: unbounded)", "budgets")]
        for name, doc, key in gauges:
            fam = GaugeMetricFamily(f"{p}_{name}", doc, labels=["pool", "tier"])
            for pool, snap in snaps.items():
                for tier, v in snap[key].items():
                    if v is not None:
                        fam.add_metric([pool, tier], float(v))
            yield fam
        pins = GaugeMetricFamily(f"{p}_pins", "experts pinned by requests in flight", labels=["pool"])
        for pool, snap in snaps.items():
            pins.add_metric([pool], snap["pins"])
        yield pins
        yield from self._counters(snaps, CounterMetricFamily)
        hist = HistogramMetricFamily(f"{p}_move_seconds", "duration of tier moves", labels=["pool", "kind"])
        for pool, snap in snaps.items():
            for kind, h in snap["move_seconds"].items():
                buckets = [(str(b), c) for b, c in h["buckets"].items()] + [("+Inf", h["count"])]
                hist.add_metric([pool, kind], buckets, h["sum"])
        yield hist

    def _counters(self, snaps: dict[str, dict[str, Any]], family: Any) -> Iterator[Any]:
        p = self.prefix
        for name, doc, label, key in [
            ("hits", "acquires that found the expert in a tier", "tier", "hits"),
            ("misses", "acquires that did not find the expert in a tier", "tier", "misses"),
            ("moved_bytes", "bytes moved between tiers", "kind", "bytes_moved"),
            ("moves", "tier moves", "kind", "moves"),
            ("evictions", "experts evicted from a tier", "tier", "evictions"),
        ]:
            fam = family(f"{p}_{name}", doc, labels=["pool", label])
            for pool, snap in snaps.items():
                for k, v in snap[key].items():
                    fam.add_metric([pool, k], float(v))
            yield fam
        for name, doc, key in [("prefetches", "prefetches started", "prefetches"),
                               ("waits", "acquires that waited for room", "waits"),
                               ("wait_seconds", "seconds spent waiting for room", "wait_seconds"),
                               ("busy_errors", "acquires that gave up (MemoryBusyError)", "busy_errors")]:
            fam = family(f"{p}_{name}", doc, labels=["pool"])
            for pool, snap in snaps.items():
                fam.add_metric([pool], float(snap[key]))
            yield fam


class StaticSnapshot:
    """A snapshot fetched from elsewhere (another process), served as a source."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def snapshot(self) -> dict[str, Any]:
        return self.snap


def prometheus_collector(source: HasSnapshot | dict[str, HasSnapshot], prefix: str = "coe_memory") -> Any:
    """A collector to `REGISTRY.register(...)`; it reads every source's `snapshot()` on each scrape.

    A dict maps pool names to sources (the `pool` label); a single source is the pool "default"."""
    sources = source if isinstance(source, dict) else {"default": source}
    return _Collector(sources, prefix)
