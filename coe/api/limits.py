"""Per-key token-bucket rate limiting (pure, clock injected, so it is tested without sleeping)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from coe.api.errors import Overloaded

MAX_TRACKED_KEYS = 10_000


@dataclass
class TokenBucket:
    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per caller; the least recently seen callers are forgotten beyond MAX_TRACKED_KEYS."""

    def __init__(self, rate: float | None, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, caller: str) -> None:
        """Raises Overloaded (429 with Retry-After) when the caller is over its rate."""
        if self.rate is None:
            return
        now = self.clock()
        bucket = self.buckets.pop(caller, None) or TokenBucket(self.rate, self.burst, self.burst, now)
        self.buckets[caller] = bucket
        while len(self.buckets) > MAX_TRACKED_KEYS:
            self.buckets.popitem(last=False)
        wait = bucket.take(now)
        if wait > 0:
            raise Overloaded(f"rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded; retry in "
                             f"{wait:.1f} s", code="rate_limit_exceeded",
                             headers={"Retry-After": str(max(1, math.ceil(wait)))})
