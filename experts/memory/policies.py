"""Eviction policies behind one interface: LRU, and cost-aware (lowest expected reuse x reload cost goes)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Candidate:
    """An evictable expert as a policy sees it: its size and what bringing it back would cost."""

    name: str
    nbytes: int
    reload_s: float


class EvictionPolicy(Protocol):
    """Ranks resident experts; the one with the lowest score is evicted first."""

    name: str

    def touch(self, expert: str, now: float) -> None:
        """The expert was just used (acquired)."""

    def record_route(self, expert: str, now: float) -> None:
        """A router chose the expert (feeds reuse estimates)."""

    def score(self, candidate: Candidate, now: float) -> float:
        """The value of keeping the candidate resident; higher is kept longer."""

    def recency(self, expert: str) -> int:
        """Order of last use (higher = more recent, -1 = never); breaks score ties."""


class _Recency:
    """Last-use order by a counter, not a clock: two touches at one instant still have an order."""

    def __init__(self) -> None:
        self._tick = 0
        self._last: dict[str, int] = {}

    def touch(self, expert: str, now: float) -> None:
        self._tick += 1
        self._last[expert] = self._tick

    def recency(self, expert: str) -> int:
        return self._last.get(expert, -1)


class LRUPolicy(_Recency):
    """Evict the least recently used expert."""

    name = "lru"

    def record_route(self, expert: str, now: float) -> None:
        return None

    def score(self, candidate: Candidate, now: float) -> float:
        return float(self.recency(candidate.name))


class CostAwarePolicy(_Recency):
    """Evict the expert with the lowest expected reuse x reload cost.

    Reuse is the exponentially decayed count of routing decisions for the expert over the last `window_s`
    seconds (half-life `half_life_s`), so a burst of traffic protects an expert and old traffic fades.
    Reload cost is bytes / measured bandwidth of the move back to the device (Candidate.reload_s).
    """

    name = "cost_aware"

    def __init__(self, half_life_s: float = 30.0, window_s: float = 300.0, max_events: int = 4096) -> None:
        super().__init__()
        if half_life_s <= 0 or window_s <= 0:
            raise ValueError("half_life_s and window_s must be > 0")
        self.half_life_s = half_life_s
        self.window_s = window_s
        self.max_events = max_events
        self._routes: dict[str, deque[float]] = {}

    def record_route(self, expert: str, now: float) -> None:
        events = self._routes.setdefault(expert, deque(maxlen=self.max_events))
        events.append(now)
        while events and events[0] < now - self.window_s:
            events.popleft()

    def reuse(self, expert: str, now: float) -> float:
        """Decayed count of recent routes to the expert (1.0 for a route right now)."""
        events = self._routes.get(expert, ())
        return sum(math.pow(0.5, (now - t) / self.half_life_s) for t in events if now - t <= self.window_s)

    def score(self, candidate: Candidate, now: float) -> float:
        return self.reuse(candidate.name, now) * candidate.reload_s


def victim_order(policy: EvictionPolicy, candidates: Sequence[Candidate], now: float) -> list[Candidate]:
    """Candidates in eviction order: lowest score first, then least recently used, then by name."""
    return sorted(candidates, key=lambda c: (policy.score(c, now), policy.recency(c.name), c.name))


def make_policy(name: Literal["lru", "cost_aware"], half_life_s: float = 30.0, window_s: float = 300.0
                ) -> EvictionPolicy:
    """The policy a config names (MemoryConfig.policy)."""
    if name == "lru":
        return LRUPolicy()
    if name == "cost_aware":
        return CostAwarePolicy(half_life_s=half_life_s, window_s=window_s)
    raise ValueError(f"unknown eviction policy {name!r} (lru, cost_aware)")
