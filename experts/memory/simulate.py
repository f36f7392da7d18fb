"""Simulated experts and a virtual-time event loop, for tests and trace replays without real weights.

A SimulatedExpert sleeps nbytes / bandwidth on every move, so replays see realistic swap times; run under
`run_virtual` a thousand requests take milliseconds of wall time and timings are exactly reproducible.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from experts.memory.bandwidth import DEFAULT_BANDWIDTH
from experts.memory.movable import TIERS, Tier, move_kind

T = TypeVar("T")


@dataclass
class SimInfo:
    nbytes: int


class Ledger:
    """Bytes really present per tier, kept by the experts themselves; it checks budgets independently of the
    manager's own accounting and remembers the peak."""

    def __init__(self, budgets: Mapping[str, int | None]) -> None:
        self.budgets = dict(budgets)
        self.bytes: dict[str, int] = {t: 0 for t in TIERS}
        self.peak: dict[str, int] = {t: 0 for t in TIERS}
        self.violations: list[str] = []

    def add(self, tier: Tier, nbytes: int) -> None:
        self.bytes[tier] += nbytes
        self.peak[tier] = max(self.peak[tier], self.bytes[tier])
        budget = self.budgets.get(tier)
        if budget is not None and self.bytes[tier] > budget:
            self.violations.append(f"{tier}: {self.bytes[tier]} B > budget {budget} B")

    def remove(self, tier: Tier, nbytes: int) -> None:
        self.bytes[tier] -= nbytes


@dataclass
class SimulatedExpert:
    """A Movable whose moves take nbytes / bandwidth seconds; its bytes occupy both tiers while copying."""

    name: str
    nbytes: int
    start_tier: Tier = "disk"
    bandwidth: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BANDWIDTH))
    ledger: Ledger | None = None
    moves: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.info = SimInfo(self.nbytes)
        self._tier: Tier = self.start_tier
        self._busy = False
        if self.ledger is not None and self._tier != "disk":
            self.ledger.add(self._tier, self.nbytes)

    @property
    def tier(self) -> Tier:
        return self._tier

    async def to(self, tier: Tier) -> None:
        src = self._tier
        if tier == src:
            return
        if self._busy:
            msg = f"{self.name}: overlapping moves (the manager must serialise them)"
            if self.ledger is not None:
                self.ledger.violations.append(msg)
            raise RuntimeError(msg)
        self._busy = True
        if self.ledger is not None and tier != "disk":
            self.ledger.add(tier, self.nbytes)
        try:
            await asyncio.sleep(self.nbytes / self.bandwidth[move_kind(src, tier)])
        finally:
            self._busy = False
        if self.ledger is not None and src != "disk":
            self.ledger.remove(src, self.nbytes)
        self._tier = tier
        self.moves.append(move_kind(src, tier))


class DeadlockError(RuntimeError):
    """Raised by the virtual-time loop when no task can ever make progress (it would block forever)."""


class _VirtualSelector(selectors.DefaultSelector):
    """Instead of blocking for `timeout`, advances the loop's virtual clock by it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:  # nothing scheduled, nothing ready: every task waits on another
            raise DeadlockError("virtual time: every task is waiting and no timer is pending")
        self.now += max(0.0, timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is sleeping (no real I/O expected)."""

    def __init__(self) -> None:
        self._vselector = _VirtualSelector()
        super().__init__(self._vselector)

    def time(self) -> float:
        return self._vselector.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a fresh VirtualTimeLoop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
