"""AffinityDispatcher on sized fake experts in virtual time: affinity order, pins, bounded passing-over."""

from __future__ import annotations

import asyncio

import pytest

from experts.memory import ExpertQueues, QueueFullError, TierBudgets, TierManager
from experts.memory.dispatcher import AffinityDispatcher
from experts.memory.simulate import run_virtual


def setup(make_experts, mode="affinity", max_skips=None, max_queue=64):
    xs = make_experts({"a": 4, "b": 4})
    m = TierManager(TierBudgets(device=4, acquire_timeout_s=1000))
    for name, x in xs.items():
        m.register(name, x)
    loop_time = lambda: asyncio.get_running_loop().time()  # noqa: E731
    d = AffinityDispatcher(m, ExpertQueues(mode=mode, max_skips=max_skips, max_queue=max_queue), clock=loop_time)
    return xs, m, d


def run_trace(d, trace, served):
    async def one(i, expert):
        await asyncio.sleep(0.001 * i)  # arrive in trace order
        async with d.slot(expert) as backend:
            assert backend.tier == "device"
            served.append(expert)
            await asyncio.sleep(1)

    async def main():
        await asyncio.gather(*[one(i, e) for i, e in enumerate(trace)])

    run_virtual(main())


@pytest.mark.parametrize("mode,swaps", [("fifo", 12), ("affinity", 4)])  # moves in + out
def test_affinity_groups_requests_of_the_resident_expert(make_experts, mode, swaps):
    xs, m, d = setup(make_experts, mode=mode)
    served: list[str] = []
    run_trace(d, ["a", "b", "a", "b", "a", "b"], served)
    changes = sum(1 for x, y in zip(served, served[1:], strict=False) if x != y)
    moves = len(xs["a"].moves) + len(xs["b"].moves)
    assert len(served) == 6
    assert changes == (5 if mode == "fifo" else 1)
    assert moves == swaps


def test_starvation_bound(make_experts):
    xs, m, d = setup(make_experts, max_skips=2)
    served: list[str] = []
    run_trace(d, ["a", "b", "a", "a", "a", "a", "a"], served)
    assert served.index("b") <= 3  # passed over at most twice


def test_queue_bound(make_experts):
    xs, m, d = setup(make_experts, max_queue=1)

    async def main():
        async def hold():
            async with d.slot("a"):
                await asyncio.sleep(5)

        t1 = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        t2 = asyncio.create_task(hold())  # queued behind t1
        await asyncio.sleep(0.1)
        with pytest.raises(QueueFullError):
            async with d.slot("a"):
                pass
        await asyncio.gather(t1, t2)

    run_virtual(main())


def test_cancelled_waiter_frees_its_turn(make_experts):
    xs, m, d = setup(make_experts)

    async def main():
        async def hold(expert, s):
            async with d.slot(expert):
                await asyncio.sleep(s)

        t1 = asyncio.create_task(hold("a", 2))
        await asyncio.sleep(0.1)
        t2 = asyncio.create_task(hold("b", 1))
        await asyncio.sleep(0.1)
        t2.cancel()
        await asyncio.sleep(0.1)
        t3 = asyncio.create_task(hold("a", 1))
        await asyncio.gather(t1, t3)
        assert d.running == 0

    run_virtual(main())
