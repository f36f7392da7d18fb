"""Counts of generations per expert inside a pool replica: lets tests and admins see that a cancelled
request really stopped (active drops to 0, `cancelled` goes up) rather than running on unseen."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class GenerationStats:
    def __init__(self) -> None:
        self.counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    @contextmanager
    def track(self, expert: str) -> Iterator[None]:
        c = self.counts[expert]
        c["started"] += 1
        c["active"] += 1
        outcome = "failed"
        try:
            yield
            outcome = "finished"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            c["active"] -= 1
            c[outcome] += 1

    def of(self, expert: str) -> dict[str, int]:
        c = self.counts[expert]
        return {k: c[k] for k in ("started", "active", "finished", "cancelled", "failed")}
