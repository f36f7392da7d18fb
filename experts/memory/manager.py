"""TierManager: keeps experts' weights within per-tier byte budgets, loading on demand and evicting by policy.

Accounting, per tier, in two numbers:
- *load*: bytes settled there and not being evicted, plus bytes promised to moves into it. Planning keeps
  load <= budget, so room promised to one request is not handed to another.
- *physical*: bytes really there (settled, including experts on their way out) plus moves into it that have
  started. A move starts only when physical + its size <= budget, so a budget is never exceeded even while
  an evicted expert is still being copied out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from experts.memory.bandwidth import BandwidthMeter
from experts.memory.defaults import ACQUIRE_TIMEOUT_S
from experts.memory.errors import MemoryBusyError
from experts.memory.metrics import MemoryMetrics
from experts.memory.movable import TIERS, Movable, Tier, is_up, move_kind, tier_above, tier_below
from experts.memory.policies import Candidate, EvictionPolicy, LRUPolicy, victim_order

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TierBudgets:
    """Byte budgets (None = unbounded) and how long an acquire may wait for room before giving up."""

    device: int | None = None
    host: int | None = None
    acquire_timeout_s: float = ACQUIRE_TIMEOUT_S

    def of(self, tier: Tier) -> int | None:
        return self.device if tier == "device" else self.host if tier == "host" else None


@dataclass(eq=False)
class _Entry:
    name: str
    backend: Movable
    nbytes: int
    tier: Tier  # where the bytes are settled (the source while a move is in flight)
    dst: Tier | None = None  # destination of the move in flight
    started: bool = False  # the move in flight has passed its tier's physical gate
    move: asyncio.Task[None] | None = None
    pins: int = 0  # requests running on it
    wanted: int = 0  # acquires waiting for it (it must not be evicted under them)

    @property
    def evictable(self) -> bool:
        return self.dst is None and self.pins == 0 and self.wanted == 0


class TierManager:
    """Moves registered experts between device, host and disk; `acquire` gives a pinned resident one."""

    def __init__(self, budgets: TierBudgets, policy: EvictionPolicy | None = None,
                 bandwidth: BandwidthMeter | None = None, clock: Callable[[], float] | None = None) -> None:
        self.budgets = budgets
        self.policy: EvictionPolicy = policy or LRUPolicy()
        self.bandwidth = bandwidth or BandwidthMeter()
        self.metrics = MemoryMetrics()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._changed: asyncio.Event | None = None
        self._last_used: dict[str, float] = {}

    # ---- registration and state --------------------------------------------------------------------------
    def register(self, name: str, backend: Movable) -> None:
        """Adds an expert where it is now; its size is what the backend measured (info.nbytes)."""
        if name in self._entries:
            raise ValueError(f"expert {name!r} is already registered")
        nbytes = int(backend.info.nbytes)
        if nbytes <= 0:
            raise ValueError(f"expert {name!r} reports info.nbytes={nbytes}; its size must be measured first")
        tier = backend.tier
        budget = self.budgets.of(tier)
        if budget is not None and self._load(tier) + nbytes > budget:
            raise ValueError(f"expert {name!r} ({nbytes} B) is on {tier} but does not fit its budget "
                             f"({self._load(tier)} of {budget} B used); register experts before loading them")
        self._entries[name] = _Entry(name, backend, nbytes, tier)

    def tier_of(self, name: str) -> Tier:
        return self._entry(name).tier

    def is_resident(self, name: str) -> bool:
        """On the device and not on its way out (what the affinity scheduler prefers)."""
        e = self._entry(name)
        return e.tier == "device" and e.dst is None

    def resident(self) -> list[str]:
        return [n for n in self._entries if self.is_resident(n)]

    def physical_bytes(self, tier: Tier) -> int:
        """Bytes really in a tier now, including experts being copied out and started copies in."""
        return sum(e.nbytes for e in self._entries.values()
                   if e.tier == tier or (e.dst == tier and e.started))

    def snapshot(self) -> dict[str, Any]:
        """Gauges and counters for /metrics (see metrics.prometheus_collector)."""
        out = self.metrics.as_dict()
        out["residency"] = {t: sum(1 for e in self._entries.values() if e.tier == t) for t in TIERS}
        out["bytes"] = {t: self.physical_bytes(t) for t in TIERS}
        out["budgets"] = {"device": self.budgets.device, "host": self.budgets.host}
        out["pins"] = sum(e.pins for e in self._entries.values())
        out["bandwidth"] = self.bandwidth.table()
        return out

    # ---- the public operations -------------------------------------------------------------------------
    @asynccontextmanager
    async def acquire(self, name: str) -> AsyncIterator[Movable]:
        """Makes the expert device-resident and pins it until the block exits."""
        e = self._entry(name)
        await self._pin(e)
        try:
            yield e.backend
        finally:
            e.pins -= 1
            self._last_used[name] = self._now()
            self.policy.touch(name, self._now())
            self._notify()

    def record_route(self, name: str) -> None:
        """A routing decision chose this expert: feeds the reuse estimate of cost-aware eviction."""
        self._entry(name)
        self.policy.record_route(name, self._now())

    def prefetch(self, name: str) -> bool:
        """Starts moving the expert one tier up in the background; True when a move was started.

        A no-op when it is resident or moving. It only takes free room or evicts unpinned experts the policy
        values less than this one; it never waits.
        """
        e = self._entry(name)
        if e.dst is not None or e.tier == "device":
            return False
        up = tier_above(e.tier)
        gate = self.policy.score(self._candidate(e, e.tier), self._now())
        e.wanted += 1  # so that making room below (host for device victims) never picks this expert
        try:
            if not self._make_room(up, e, gate=gate):
                return False
        finally:
            e.wanted -= 1
        self.metrics.prefetches += 1
        self._start_move(e, up)
        return True

    async def demote(self, name: str, tier: Tier) -> None:
        """Admin offload: moves an idle expert down to `tier` (one step at a time); refuses a pinned one."""
        e = self._entry(name)
        while TIERS.index(e.tier) < TIERS.index(tier):
            if e.move is not None:
                await self._join_move(e)
                continue
            if e.pins or e.wanted:
                raise MemoryBusyError(f"expert {name!r} is in use by {e.pins} request(s); offload it later")
            dst = tier_below(e.tier)
            if dst == "host" and not self._make_room("host", e):
                dst = "disk"
            self._start_move(e, dst)
            await self._join_move(e)

    def experts_state(self) -> dict[str, dict[str, Any]]:
        """Per expert: tier, pins and seconds since last use (for GET /v1/experts)."""
        now = self._now()
        return {n: {"tier": e.tier, "moving_to": e.dst, "pins": e.pins,
                    "idle_s": round(now - self._last_used[n], 3) if n in self._last_used else None}
                for n, e in self._entries.items()}

    async def wait_idle(self) -> None:
        """Waits for every move in flight (prefetches, evictions) to finish."""
        while tasks := [e.move for e in self._entries.values() if e.move is not None]:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- acquire internals ------------------------------------------------------------------------------
    async def _pin(self, e: _Entry) -> None:
        start = self._now()
        deadline = start + self.budgets.acquire_timeout_s
        self.metrics.record_lookup(self._found_in(e))
        self.policy.touch(e.name, start)
        e.wanted += 1
        waited = False
        try:
            while not (e.tier == "device" and e.dst is None):
                if e.move is not None:
                    await self._join_move(e)
                    continue
                budget = self.budgets.device
                if budget is not None and e.nbytes > budget:
                    self.metrics.busy_errors += 1
                    raise MemoryBusyError(f"expert {e.name!r} needs {e.nbytes} B but the device budget is "
                                          f"{budget} B; it can never be loaded")
                if self._make_room("device", e):
                    self._start_move(e, "device")
                    continue
                if not waited:
                    waited = True
                    self.metrics.waits += 1
                await self._wait_for_change(e, deadline)
            e.pins += 1
        finally:
            e.wanted -= 1
            if waited:
                self.metrics.wait_seconds += self._now() - start
            self._notify()

    async def _join_move(self, e: _Entry) -> None:
        """Waits for the move in flight (single flight: acquirers share one load); re-raises a failed load."""
        task, dst = e.move, e.dst
        assert task is not None
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():  # our caller was cancelled, not the move
                raise
        except Exception:
            if dst == "device":
                raise

    async def _wait_for_change(self, e: _Entry, deadline: float) -> None:
        remaining = deadline - self._now()
        changed = self._event()
        if remaining > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
                return
        self.metrics.busy_errors += 1
        pinned = sorted(n for n, x in self._entries.items() if x.tier == "device" and x.pins)
        loading = sorted(n for n, x in self._entries.items() if x.dst == "device")
        raise MemoryBusyError(
            f"no device room for expert {e.name!r} ({e.nbytes} B) "
            f"after {self.budgets.acquire_timeout_s:g} s: "
            f"budget {self.budgets.device} B, in use by pinned experts {pinned}, loading {loading}")

    # ---- planning ----------------------------------------------------------------------------------------
    def _load(self, tier: Tier) -> int:
        """Planned bytes of a tier. Bytes on their way *down* count as free already (evictions always finish,
        disk is unbounded); bytes on their way *up* still count, because a load may be waiting for an
        eviction into this very tier (a device/host swap), and promising its room would deadlock."""
        return sum(e.nbytes for e in self._entries.values()
                   if (e.tier == tier and (e.dst is None or is_up(e.tier, e.dst))) or e.dst == tier)

    def _make_room(self, tier: Tier, incoming: _Entry, gate: float | None = None) -> bool:
        """Evicts enough unpinned experts from `tier` for `incoming` (starting their moves down); False if it
        cannot. With `gate`, only victims the policy scores below it may go (prefetch must not evict the more
        valuable)."""
        budget = self.budgets.of(tier)
        if budget is None:
            return True
        need = self._load(tier) + incoming.nbytes - budget
        if need <= 0:
            return True
        now = self._now()
        landing = tier_below(tier)
        pool = [self._candidate(x, landing) for x in self._entries.values()
                if x.tier == tier and x.evictable and x is not incoming]
        victims: list[Candidate] = []
        for c in victim_order(self.policy, pool, now):
            if need <= 0:
                break
            if gate is not None and self.policy.score(c, now) >= gate:
                return False
            victims.append(c)
            need -= c.nbytes
        if need > 0:
            return False
        for c in victims:
            self._evict(self._entries[c.name])
        return True

    def _evict(self, e: _Entry) -> None:
        """Moves an expert one tier down; a device expert goes straight to disk when the host has no room."""
        dst = tier_below(e.tier)
        if dst == "host" and not self._make_room("host", e):
            dst = "disk"
        self.metrics.evictions[e.tier] += 1
        log.debug("evict", extra={"expert": e.name, "src": e.tier, "dst": dst})
        self._start_move(e, dst)

    @staticmethod
    def _found_in(e: _Entry) -> Tier:
        """The tier an acquire finds the expert in: an expert on its way off the device counts as below it."""
        if e.tier == "device" and e.dst is not None:
            return e.dst
        return e.tier

    def _candidate(self, e: _Entry, landing: Tier) -> Candidate:
        return Candidate(e.name, e.nbytes, self.bandwidth.reload_s(landing, e.nbytes))

    # ---- moves -------------------------------------------------------------------------------------------
    def _start_move(self, e: _Entry, dst: Tier) -> None:
        e.dst = dst
        e.move = asyncio.get_running_loop().create_task(self._run_move(e, dst), name=f"move-{e.name}-{dst}")
        e.move.add_done_callback(_retrieve)  # failures are logged in _run_move and raised to acquirers

    async def _run_move(self, e: _Entry, dst: Tier) -> None:
        src = e.tier
        try:
            await self._physical_gate(dst, e.nbytes)
            e.started = True
            t0 = self._now()
            await e.backend.to(dst)
            seconds = self._now() - t0
            self.metrics.record_move(move_kind(src, dst), e.nbytes, seconds)
            self.bandwidth.observe(src, dst, e.nbytes, seconds)
        except Exception:
            log.exception("tier move failed", extra={"expert": e.name, "src": src, "dst": dst})
            raise
        finally:
            e.tier = e.backend.tier  # the backend is the truth, also after a failed move
            e.dst, e.started, e.move = None, False, None
            self._notify()

    async def _physical_gate(self, tier: Tier, nbytes: int) -> None:
        """Waits until the bytes leaving `tier` are really gone, so the copy in never overlaps a budget."""
        budget = self.budgets.of(tier)
        while budget is not None and self.physical_bytes(tier) + nbytes > budget:
            await self._event().wait()

    # ---- small helpers -----------------------------------------------------------------------------------
    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"expert {name!r} is not registered with the memory manager") from None

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        """Wakes everyone waiting for room; they re-check their condition."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None


def _retrieve(task: asyncio.Task[None]) -> None:
    """Marks a background move's exception as seen, so nobody-awaited evictions do not warn at shutdown."""
    if not task.cancelled():
        task.exception()
