"""Property tests: 200 random concurrent acquires of random-sized experts never exceed a budget, never move a
pinned expert, and every acquire is served on the device (or fails only with MemoryBusyError)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experts.memory import CostAwarePolicy, LRUPolicy, MemoryBusyError, TierBudgets, TierManager
from experts.memory.simulate import Ledger, SimulatedExpert, run_virtual

BW = {k: 10.0 for k in ("disk->host", "disk->device", "host->device", "device->host", "device->disk",
                        "host->disk")}


class WatchedExpert(SimulatedExpert):
    """Records a violation when it is moved off the device while a request holds it."""

    users: dict[str, int]

    async def to(self, tier):  # noqa: ANN001
        if self.tier == "device" and self.users[self.name] > 0 and self.ledger is not None:
            self.ledger.violations.append(f"{self.name} moved off the device while pinned")
        await super().to(tier)


@st.composite
def scenarios(draw):
    sizes = draw(st.lists(st.integers(1, 50), min_size=2, max_size=8))
    fits_one = draw(st.booleans())
    device = max(sizes) if fits_one else draw(st.integers(max(sizes), sum(sizes)))
    host = draw(st.one_of(st.none(), st.integers(0, sum(sizes))))
    requests = draw(st.lists(st.tuples(st.integers(0, len(sizes) - 1), st.floats(0, 20), st.floats(0, 3)),
                             min_size=200, max_size=200))
    policy = draw(st.sampled_from(["lru", "cost_aware"]))
    prefetch = draw(st.booleans())
    extra_prefetches = draw(st.lists(st.tuples(st.integers(0, len(sizes) - 1), st.floats(0, 25)),
                                     max_size=60))
    return sizes, device, host, requests, policy, prefetch, extra_prefetches


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_budgets_and_pins_hold_under_random_concurrent_acquires(scenario):
    sizes, device, host, requests, policy_name, prefetch, extra_prefetches = scenario
    ledger = Ledger({"device": device, "host": host})
    users = {f"e{i}": 0 for i in range(len(sizes))}
    policy = LRUPolicy() if policy_name == "lru" else CostAwarePolicy(half_life_s=5.0)
    m = TierManager(TierBudgets(device=device, host=host, acquire_timeout_s=30.0), policy=policy)
    experts = {}
    for i, size in enumerate(sizes):
        x = WatchedExpert(f"e{i}", size, bandwidth=BW, ledger=ledger)
        x.users = users
        experts[x.name] = x
        m.register(x.name, x)
    outcomes: list[str] = []

    async def one(name: str, delay: float, hold: float) -> None:
        await asyncio.sleep(delay)
        m.record_route(name)
        if prefetch:
            m.prefetch(name)
        try:
            async with m.acquire(name) as backend:
                users[name] += 1
                assert backend.tier == "device"
                await asyncio.sleep(hold)
                users[name] -= 1
            outcomes.append("ok")
        except MemoryBusyError:
            outcomes.append("busy")

    async def prefetch_later(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        m.prefetch(name)

    async def main() -> None:
        await asyncio.gather(*[one(f"e{i}", d, h) for i, d, h in requests],
                             *[prefetch_later(f"e{i}", d) for i, d in extra_prefetches])
        await m.wait_idle()

    run_virtual(main())
    assert ledger.violations == []
    assert len(outcomes) == 200
    assert m.snapshot()["pins"] == 0
    for tier in ("device", "host"):  # the manager's books agree with where the bytes really are
        assert m.physical_bytes(tier) == ledger.bytes[tier]
    assert sum(x.info.nbytes for x in experts.values() if x.tier == "device") <= device
