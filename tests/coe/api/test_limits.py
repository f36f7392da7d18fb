"""Token-bucket rate limits with a fake clock."""

import pytest

from coe.api.errors import Overloaded
from coe.api.limits import RateLimiter


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_burst_then_refill_at_rate():
    clock = Clock()
    rl = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        rl.check("a")
    with pytest.raises(Overloaded) as err:
        rl.check("a")
    assert err.value.status == 429 and err.value.headers == {"Retry-After": "1"}
    rl.check("b")  # other callers have their own bucket
    clock.t += 0.5  # one token back at 2/s
    rl.check("a")
    with pytest.raises(Overloaded):
        rl.check("a")
    clock.t += 10
    for _ in range(3):  # never more than the burst
        rl.check("a")
    with pytest.raises(Overloaded):
        rl.check("a")


def test_retry_after_rounds_up_and_no_limit_when_unset():
    clock = Clock()
    rl = RateLimiter(rate=0.2, burst=1, clock=clock)
    rl.check("a")
    with pytest.raises(Overloaded) as err:
        rl.check("a")
    assert err.value.headers["Retry-After"] == "5"
    off = RateLimiter(rate=None, burst=1, clock=clock)
    for _ in range(100):
        off.check("a")
