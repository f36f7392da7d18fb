"""Per-expert circuit breakers: stop sending to an expert that keeps failing, probe it again later.

closed → (failure_threshold consecutive failures) → open → (reset_after_s) → half-open: up to
`half_open_probes` requests go through; a success closes the breaker, a failure opens it again.
Pure Python with an injected clock; one board per gateway replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from coe.config import BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    """After `allow()` returns True the caller reports exactly one of success, failure or release."""

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probes = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cfg.reset_after_s:
            self._state, self.probes = BreakerState.HALF_OPEN, 0
        return self._state

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self.probes < self.cfg.half_open_probes:
            self.probes += 1
            return True
        return False

    def success(self) -> None:
        self._state, self.failures, self.probes = BreakerState.CLOSED, 0, 0

    def failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self.failures += 1
        if self.failures >= self.cfg.failure_threshold:
            self._open()

    def release(self) -> None:
        """The request ended without telling anything about the expert (cancelled, queue full)."""
        if self._state is BreakerState.HALF_OPEN and self.probes > 0:
            self.probes -= 1

    def retry_after_s(self) -> float:
        if self.state is BreakerState.OPEN:
            return max(0.0, self.cfg.reset_after_s - (self.clock() - self.opened_at))
        return 0.0

    def _open(self) -> None:
        self._state, self.opened_at, self.probes = BreakerState.OPEN, self.clock(), 0


class BreakerBoard:
    """The breakers of every expert, created on first use."""

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, expert: str) -> CircuitBreaker:
        if expert not in self.breakers:
            self.breakers[expert] = CircuitBreaker(self.cfg, self.clock)
        return self.breakers[expert]

    def snapshot(self) -> dict[str, str]:
        return {name: b.state.value for name, b in self.breakers.items()}
