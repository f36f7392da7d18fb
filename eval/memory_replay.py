"""Replays a routed request trace through TierManager + ExpertQueues and measures swaps and latency.

The trace has Zipf popularity over experts and bursts (short spells of faster arrivals, mostly for one
expert), the shape that makes eviction and scheduling choices matter. Experts are SimulatedExperts whose
moves take bytes / bandwidth (measured bandwidths can be passed in) and run under virtual time, or any
Movable with a real `serve` function on a real event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from experts.memory import ExpertQueues, Movable, QueueFullError, TierBudgets, TierManager, make_policy
from experts.memory.bandwidth import DEFAULT_BANDWIDTH, BandwidthMeter
from experts.memory.simulate import SimulatedExpert, run_virtual

GB = 1_000_000_000


@dataclass(frozen=True)
class Request:
    arrival_s: float
    expert: str


@dataclass(frozen=True)
class TraceSpec:
    """1,000 requests over the experts, Zipf(zipf_s) popularity, bursts of `burst_len` at `burst_rate_x`."""

    n_requests: int = 1000
    experts: Mapping[str, int] = field(default_factory=lambda: {
        "general": 2 * GB, "code": 3 * GB, "math": 2 * GB, "medical": 1 * GB, "legal": 1 * GB,
        "chat": 2 * GB})
    zipf_s: float = 1.1
    rate_per_s: float = 3.0
    burst_every: int = 100
    burst_len: int = 30
    burst_rate_x: float = 3.0
    burst_focus: float = 0.7  # share of a burst's requests that go to its one expert
    seed: int = 0


def make_trace(spec: TraceSpec) -> list[Request]:
    """Poisson arrivals with Zipf-distributed experts; every `burst_every` requests a burst starts."""
    rng = np.random.default_rng(spec.seed)
    names = list(spec.experts)
    weights = 1.0 / np.arange(1, len(names) + 1) ** spec.zipf_s
    probs = weights / weights.sum()
    t, out, burst_expert, burst_left = 0.0, [], names[0], 0
    for i in range(spec.n_requests):
        if i % spec.burst_every == spec.burst_every // 2:
            burst_expert, burst_left = names[int(rng.choice(len(names), p=probs))], spec.burst_len
        rate = spec.rate_per_s * (spec.burst_rate_x if burst_left else 1.0)
        t += float(rng.exponential(1.0 / rate))
        if burst_left and rng.random() < spec.burst_focus:
            name = burst_expert
        else:
            name = names[int(rng.choice(len(names), p=probs))]
        burst_left = max(0, burst_left - 1)
        out.append(Request(t, name))
    return out


@dataclass(frozen=True)
class ReplayConfig:
    """One arm of the comparison: eviction policy, prefetch on/off, request order."""

    label: str
    policy: Literal["lru", "cost_aware"] = "lru"
    prefetch: bool = False
    order: Literal["fifo", "affinity"] = "fifo"
    max_skips: int | None = 32
    max_wait_s: float | None = 20.0


@dataclass
class ReplayResult:
    label: str
    requests: int
    rejected: int
    busy: int
    swaps: int
    device_hits: int
    latencies_s: list[float]
    makespan_s: float
    snapshot: dict[str, Any]

    def row(self) -> dict[str, float | str]:
        lat = np.asarray(self.latencies_s)
        return {"config": self.label, "swaps_per_request": self.swaps / self.requests,
                "device_hit_rate": self.device_hits / max(1, len(lat) + self.busy),
                "p50_s": float(np.percentile(lat, 50)), "p99_s": float(np.percentile(lat, 99)),
                "throughput_rps": len(lat) / self.makespan_s, "rejected": self.rejected + self.busy}


Serve = Callable[[Movable, Request], Awaitable[None]]


def sleep_service(service_s: float) -> Serve:
    """A request that keeps the expert busy for service_s (the simulated generation)."""
    async def serve(backend: Movable, request: Request) -> None:
        await asyncio.sleep(service_s)
    return serve


async def replay(trace: Sequence[Request], experts: Mapping[str, Movable], config: ReplayConfig,
                 budgets: TierBudgets, serve: Serve, workers: int = 2,
                 bandwidth: Mapping[str, float] | None = None) -> ReplayResult:
    """Feeds the trace at its arrival times; `workers` requests run at once, each inside an acquire."""
    loop = asyncio.get_running_loop()
    manager = TierManager(budgets, make_policy(config.policy), BandwidthMeter(bandwidth))
    for name, backend in experts.items():
        manager.register(name, backend)
    queues: ExpertQueues[Request] = ExpertQueues(config.order, max_queue=len(trace),
                                                 max_skips=config.max_skips, max_wait_s=config.max_wait_s)
    work = asyncio.Event()
    latencies: list[float] = []
    counts = {"rejected": 0, "busy": 0}
    t0 = loop.time()

    async def arrivals() -> None:
        for r in trace:
            await asyncio.sleep(max(0.0, t0 + r.arrival_s - loop.time()))
            manager.record_route(r.expert)
            try:
                queues.push(r.expert, r, loop.time())
            except QueueFullError:
                counts["rejected"] += 1
                continue
            if config.prefetch and manager.tier_of(r.expert) == "disk":
                manager.prefetch(r.expert)  # warm the host copy as soon as the router has decided
            work.set()

    async def worker() -> None:
        while True:
            entry = queues.pop(manager.resident(), loop.time())
            if entry is None:
                if done.is_set():
                    return
                work.clear()
                await work.wait()
                continue
            if config.prefetch and (upcoming := queues.next_expert(manager.resident(), loop.time())):
                manager.prefetch(upcoming)
            try:
                async with manager.acquire(entry.expert) as backend:
                    await serve(backend, entry.item)
                latencies.append(loop.time() - (t0 + entry.item.arrival_s))
            except Exception:  # MemoryBusyError counts as a failed request; the replay goes on
                counts["busy"] += 1

    done = asyncio.Event()
    pool = [asyncio.create_task(worker()) for _ in range(workers)]
    await arrivals()
    done.set()
    work.set()
    await asyncio.gather(*pool)
    await manager.wait_idle()
    snap = manager.snapshot()
    swaps = sum(n for kind, n in snap["moves"].items() if kind.endswith("->device"))
    return ReplayResult(config.label, len(trace), counts["rejected"], counts["busy"], swaps,
                        snap["hits"].get("device", 0), latencies, loop.time() - t0, snap)


def replay_simulated(trace: Sequence[Request], sizes: Mapping[str, int], config: ReplayConfig,
                     budgets: TierBudgets, service_s: float, workers: int = 2,
                     bandwidth: Mapping[str, float] | None = None) -> ReplayResult:
    """The replay with SimulatedExperts (all starting on disk) in virtual time."""
    bw = dict(DEFAULT_BANDWIDTH) | dict(bandwidth or {})
    experts = {n: SimulatedExpert(n, s, bandwidth=bw) for n, s in sizes.items()}
    return run_virtual(replay(trace, experts, config, budgets, sleep_service(service_s), workers, bw))
