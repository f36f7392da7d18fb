"""Circuit breaker states with a fake clock."""

from coe.config import BreakerConfig
from coe.serve.breaker import BreakerBoard, BreakerState, CircuitBreaker


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def breaker(**kw):
    clock = Clock()
    return CircuitBreaker(BreakerConfig(failure_threshold=3, reset_after_s=10, **kw), clock), clock


def test_opens_after_consecutive_failures_only():
    b, _ = breaker()
    b.failure(), b.failure(), b.success(), b.failure(), b.failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.allow()


def test_half_open_probe_closes_or_reopens():
    b, clock = breaker()
    for _ in range(3):
        b.failure()
    clock.t = 9.9
    assert not b.allow() and round(b.retry_after_s(), 1) == 0.1
    clock.t = 10.0
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow() and not b.allow()  # one probe at a time
    b.failure()  # the probe failed: open again for another reset period
    assert b.state is BreakerState.OPEN and b.retry_after_s() == 10
    clock.t = 20.0
    assert b.allow()
    b.success()
    assert b.state is BreakerState.CLOSED and b.allow() and b.allow()


def test_released_probe_lets_another_through():
    b, clock = breaker(half_open_probes=1)
    for _ in range(3):
        b.failure()
    clock.t = 10
    assert b.allow() and not b.allow()
    b.release()  # cancelled by the client: says nothing about the expert
    assert b.state is BreakerState.HALF_OPEN and b.allow()


def test_board_keeps_one_breaker_per_expert():
    board = BreakerBoard(BreakerConfig(failure_threshold=1))
    board["a"].failure()
    assert board["a"] is board["a"]
    assert board.snapshot() == {"a": "open"}
    board["b"].success()
    assert board.snapshot() == {"a": "open", "b": "closed"}
