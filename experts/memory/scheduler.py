"""Expert-affinity scheduling: serve queued requests of the device-resident expert first, so one swap pays for
a batch (as in ExpertFlow and Symbolic-MoE), with a bound on how long any request can be passed over.

A request is *passed over* each time a younger request is served while it waits. Once a request has been
passed over `max_skips` times or has waited `max_wait_s`, it is overdue and nothing younger than it is served
before it; so no request is passed over more than `max_skips` times, nor after waiting `max_wait_s`.
FIFO mode (the comparison baseline) always serves the oldest request.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from experts.memory.defaults import MAX_SKIPS, MAX_WAIT_S
from experts.memory.errors import QueueFullError

T = TypeVar("T")
Mode = Literal["affinity", "fifo"]


@dataclass(eq=False)
class Queued(Generic[T]):
    """A waiting request: what to run, for which expert, and how it has been treated so far."""

    expert: str
    item: T
    seq: int
    enqueued_at: float
    skips: int = 0


class ExpertQueues(Generic[T]):
    """Per-expert FIFO queues and the choice of which request runs next (pure: the caller owns the clock)."""

    def __init__(self, mode: Mode = "affinity", max_queue: int = 64, max_skips: int | None = MAX_SKIPS,
                 max_wait_s: float | None = MAX_WAIT_S) -> None:
        if mode not in ("affinity", "fifo"):
            raise ValueError(f"unknown scheduling mode {mode!r} (affinity, fifo)")
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.mode = mode
        self.max_queue = max_queue
        self.max_skips = max_skips
        self.max_wait_s = max_wait_s
        self._queues: dict[str, deque[Queued[T]]] = {}
        self._seq = itertools.count()
        self._last: str | None = None

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def queued(self, expert: str) -> int:
        return len(self._queues.get(expert, ()))

    def push(self, expert: str, item: T, now: float) -> Queued[T]:
        """Queues a request; QueueFullError when the expert already has max_queue waiting."""
        q = self._queues.setdefault(expert, deque())
        if len(q) >= self.max_queue:
            raise QueueFullError(f"expert {expert!r} has {len(q)} requests queued (limit {self.max_queue})")
        entry = Queued(expert, item, next(self._seq), now)
        q.append(entry)
        return entry

    def pop(self, resident: Collection[str], now: float) -> Queued[T] | None:
        """The next request to serve given which experts are device-resident now; None when all are empty."""
        heads = [q[0] for q in self._queues.values() if q]
        if not heads:
            return None
        chosen = self._choose(heads, resident, now)
        self._queues[chosen.expert].popleft()
        for q in self._queues.values():  # everyone older than the chosen one was passed over
            for waiting in q:
                if waiting.seq > chosen.seq:
                    break
                waiting.skips += 1
        self._last = chosen.expert
        return chosen

    def next_expert(self, resident: Collection[str], now: float) -> str | None:
        """The expert `pop` would serve now (for prefetching), without taking anything."""
        heads = [q[0] for q in self._queues.values() if q]
        return self._choose(heads, resident, now).expert if heads else None

    def _choose(self, heads: list[Queued[T]], resident: Collection[str], now: float) -> Queued[T]:
        oldest = min(heads, key=lambda h: h.seq)
        if self.mode == "fifo":
            return oldest
        overdue = [h for h in heads if self._overdue(h, now)]
        if overdue:
            return min(overdue, key=lambda h: h.seq)
        if self._last in resident:
            for h in heads:
                if h.expert == self._last:
                    return h
        warm = [h for h in heads if h.expert in resident]
        if warm:  # the resident expert with the most work amortises its residency best
            return max(warm, key=lambda h: (len(self._queues[h.expert]), -h.seq))
        return oldest

    def _overdue(self, head: Queued[T], now: float) -> bool:
        if self.max_skips is not None and head.skips >= self.max_skips:
            return True
        return self.max_wait_s is not None and now - head.enqueued_at >= self.max_wait_s
