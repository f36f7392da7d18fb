"""Runs requests of a pool of experts one slot at a time, choosing the next by expert affinity.

The pure choice lives in `ExpertQueues`; this adds the asyncio side: a request waits for its turn, then holds
the TierManager's pin on its expert while it runs, so the expert cannot be evicted under it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from experts.memory.manager import TierManager
from experts.memory.movable import Movable
from experts.memory.scheduler import ExpertQueues


class AffinityDispatcher:
    """At most `concurrency` requests run at once; the next one is picked by the queues' policy."""

    def __init__(self, manager: TierManager, queues: ExpertQueues[asyncio.Future[None]], concurrency: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.manager = manager
        self.queues = queues
        self.concurrency = concurrency
        self.clock = clock
        self.running = 0

    @asynccontextmanager
    async def slot(self, expert: str) -> AsyncIterator[Movable]:
        """Waits for this request's turn (QueueFullError when the expert's queue is full), then pins it."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queues.push(expert, turn, self.clock())
        self._dispatch()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # our turn came as we were cancelled: give it back
                self._finish()
            raise
        try:
            async with self.manager.acquire(expert) as backend:
                yield backend
        finally:
            self._finish()

    def _finish(self) -> None:
        self.running -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self.running < self.concurrency:
            nxt = self.queues.pop(self.manager.resident(), self.clock())
            if nxt is None:
                return
            if nxt.item.done():  # its caller went away while queued
                continue
            self.running += 1
            nxt.item.set_result(None)
        self._prefetch_next()

    def _prefetch_next(self) -> None:
        """While the slots are busy, start bringing up the expert that will be served next."""
        nxt = self.queues.next_expert(self.manager.resident(), self.clock())
        if nxt is not None and not self.manager.is_resident(nxt):
            self.manager.prefetch(nxt)
