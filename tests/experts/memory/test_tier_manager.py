"""TierManager on sized fake experts in virtual time: loads, pins, eviction, single flight, prefetch."""

from __future__ import annotations

import asyncio

import pytest

from experts.memory import CostAwarePolicy, MemoryBusyError, TierBudgets, TierManager
from experts.memory.simulate import Ledger, run_virtual


def manager_with(experts, device=None, host=None, timeout=100.0, policy=None) -> TierManager:
    m = TierManager(TierBudgets(device=device, host=host, acquire_timeout_s=timeout), policy=policy)
    for name, x in experts.items():
        m.register(name, x)
    return m


def test_acquire_loads_to_device_and_pins_for_the_block(make_experts):
    xs = make_experts({"a": 3})
    m = manager_with(xs, device=3)

    async def main():
        loop = asyncio.get_running_loop()
        async with m.acquire("a") as backend:
            assert backend is xs["a"] and backend.tier == "device"
            assert loop.time() == 3.0  # 3 bytes at 1 B/s
            assert m.snapshot()["pins"] == 1
        assert m.snapshot()["pins"] == 0
        async with m.acquire("a"):
            assert loop.time() == 3.0  # a hit: no move

    run_virtual(main())
    assert xs["a"].moves == ["disk->device"]
    snap = m.snapshot()
    assert snap["hits"] == {"disk": 1, "device": 1}
    assert snap["misses"] == {"device": 1, "host": 1}
    assert snap["residency"] == {"device": 1, "host": 0, "disk": 0}
    assert snap["bytes"] == {"device": 3, "host": 0, "disk": 0}


def test_concurrent_acquires_share_one_load(make_experts):
    xs = make_experts({"a": 4})
    m = manager_with(xs, device=4)

    async def use():
        async with m.acquire("a"):
            await asyncio.sleep(1)

    async def main():
        await asyncio.gather(*[use() for _ in range(10)])
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 5.0  # one 4 s load, then all ten run together
    assert xs["a"].moves == ["disk->device"]
    assert m.snapshot()["moves"] == {"disk->device": 1}


def test_eviction_moves_one_tier_down_and_respects_host_budget(make_experts):
    xs = make_experts({"a": 2, "b": 2, "c": 2})
    m = manager_with(xs, device=2, host=2)

    async def main():
        for name in ("a", "b", "c"):
            async with m.acquire(name):
                pass

    run_virtual(main())
    assert xs["a"].moves == ["disk->device", "device->host", "host->disk"]
    assert xs["b"].moves == ["disk->device", "device->host"]
    assert xs["c"].moves == ["disk->device"]
    assert m.snapshot()["evictions"] == {"device": 2, "host": 1}


def test_evicted_expert_goes_straight_to_disk_when_host_cannot_take_it(make_experts):
    xs = make_experts({"a": 2, "b": 2})
    m = manager_with(xs, device=2, host=0)

    async def main():
        for name in ("a", "b"):
            async with m.acquire(name):
                pass

    run_virtual(main())
    assert xs["a"].moves == ["disk->device", "device->disk"]


def test_swapping_device_and_host_experts_does_not_deadlock(make_experts):
    xs = make_experts({"a": 2}, start="device") | make_experts({"b": 2}, start="host")
    m = manager_with(xs, device=2, host=2)

    async def main():
        async with m.acquire("b"):
            return asyncio.get_running_loop().time()

    # b's host room is not free until b has left, and b waits for a: so a must go to disk, not to the host
    assert run_virtual(main()) == 4.0
    assert xs["a"].moves == ["device->disk"]
    assert xs["b"].moves == ["host->device"]


def test_pinned_expert_is_never_evicted(make_experts):
    xs = make_experts({"a": 2, "b": 2, "c": 2})
    m = manager_with(xs, device=4, host=10)

    async def main():
        async with m.acquire("a"):
            for name in ("b", "c", "b", "c"):
                async with m.acquire(name):
                    pass

    run_virtual(main())
    assert xs["a"].moves == ["disk->device"]
    assert xs["b"].moves == ["disk->device", "device->host", "host->device", "device->host"]


def test_busy_device_waits_for_the_bound_then_raises(make_experts):
    xs = make_experts({"a": 2, "b": 2})
    m = manager_with(xs, device=2, timeout=5.0)

    async def main():
        loop = asyncio.get_running_loop()
        async with m.acquire("a"):
            t0 = loop.time()
            busy = r"no device room for expert 'b'.*pinned experts \['a'\]"
            with pytest.raises(MemoryBusyError, match=busy):
                async with m.acquire("b"):
                    pass
            return loop.time() - t0

    assert run_virtual(main()) == 5.0
    assert xs["b"].moves == []
    snap = m.snapshot()
    assert (snap["waits"], snap["busy_errors"], snap["wait_seconds"]) == (1, 1, 5.0)


def test_waiting_acquire_proceeds_once_the_pin_is_released(make_experts):
    xs = make_experts({"a": 2, "b": 2})
    m = manager_with(xs, device=2, timeout=5.0)

    async def hold_a():
        async with m.acquire("a"):
            await asyncio.sleep(3)

    async def main():
        loop = asyncio.get_running_loop()
        holder = asyncio.create_task(hold_a())
        await asyncio.sleep(2.5)  # a is loaded (2 s) and pinned until t=5
        async with m.acquire("b"):
            t = loop.time()
        await holder
        return t

    assert run_virtual(main()) == 9.0  # a released at 5, evicted 5->7, b loaded 7->9
    assert m.snapshot()["waits"] == 1


def test_expert_larger_than_the_device_budget_fails_at_once(make_experts):
    xs = make_experts({"big": 5})
    m = manager_with(xs, device=4)

    async def main():
        with pytest.raises(MemoryBusyError, match="needs 5 B but the device budget is 4 B"):
            async with m.acquire("big"):
                pass
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 0.0


def test_register_checks_size_and_budget(make_experts):
    xs = make_experts({"a": 3, "b": 3}, start="device")
    m = TierManager(TierBudgets(device=4))
    m.register("a", xs["a"])
    with pytest.raises(ValueError, match="already registered"):
        m.register("a", xs["a"])
    with pytest.raises(ValueError, match="does not fit its budget"):
        m.register("b", xs["b"])
    xs["b"].info.nbytes = 0
    with pytest.raises(ValueError, match="must be measured first"):
        m.register("b", xs["b"])
    with pytest.raises(KeyError, match="not registered"):
        m.record_route("nope")


def test_prefetch_moves_up_one_tier_in_the_background(make_experts):
    xs = make_experts({"a": 2})
    m = manager_with(xs, device=2, host=2)

    async def main():
        assert m.prefetch("a") is True
        assert m.prefetch("a") is False  # already moving
        await m.wait_idle()
        assert xs["a"].tier == "host"
        assert m.prefetch("a") is True
        await m.wait_idle()
        assert m.prefetch("a") is False  # resident

    run_virtual(main())
    assert xs["a"].moves == ["disk->host", "host->device"]
    assert m.snapshot()["prefetches"] == 2


def test_prefetch_never_evicts_a_pinned_expert(make_experts):
    xs = make_experts({"a": 2, "b": 2}, start="host")
    m = manager_with(xs, device=2)

    async def main():
        async with m.acquire("a"):
            assert m.prefetch("b") is False
            await m.wait_idle()

    run_virtual(main())
    assert xs["a"].moves == ["host->device"]
    assert xs["b"].moves == []


def test_prefetch_evicts_only_experts_the_policy_values_less(make_experts):
    xs = make_experts({"a": 2, "b": 2, "c": 2}, start="host")
    policy = CostAwarePolicy(half_life_s=1000.0)
    m = manager_with(xs, device=2, policy=policy)

    async def main():
        async with m.acquire("a"):
            pass
        for _ in range(3):
            m.record_route("a")
        m.record_route("b")
        assert m.prefetch("b") is False  # a is routed more often
        for _ in range(5):
            m.record_route("c")
        assert m.prefetch("c") is True
        await m.wait_idle()

    run_virtual(main())
    assert xs["a"].moves == ["host->device", "device->host"]
    assert xs["b"].moves == []
    assert xs["c"].moves == ["host->device"]


def test_prefetch_never_makes_room_by_evicting_the_expert_it_moves(make_experts):
    xs = make_experts({"a": 2, "b": 2})
    xs["b"] = make_experts({"b": 2}, start="host")["b"]
    m = manager_with(xs, device=2, host=2, policy=CostAwarePolicy(half_life_s=1000.0))

    async def main():
        async with m.acquire("a"):
            pass
        m.record_route("b")
        assert m.prefetch("b") is True  # a must leave the device, and the host is full with b itself
        await m.wait_idle()

    run_virtual(main())
    assert xs["a"].moves == ["disk->device", "device->disk"]
    assert xs["b"].moves == ["host->device"]


def test_acquire_joins_a_prefetch_in_flight(make_experts):
    xs = make_experts({"a": 4}, start="host")
    m = manager_with(xs, device=4)

    async def main():
        loop = asyncio.get_running_loop()
        m.prefetch("a")
        await asyncio.sleep(1)
        async with m.acquire("a"):
            return loop.time()

    assert run_virtual(main()) == 4.0
    assert xs["a"].moves == ["host->device"]


def test_no_budget_is_exceeded_while_a_victim_is_still_copying_out(make_experts):
    ledger = Ledger({"device": 4, "host": 4})
    xs = make_experts({"a": 4, "b": 4}, ledger)
    m = manager_with(xs, device=4, host=4)

    async def main():
        async with m.acquire("a"):
            pass
        async with m.acquire("b"):
            return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 12.0  # load a (4), evict a (4), only then load b (4)
    assert ledger.violations == []
    assert ledger.peak == {"device": 4, "host": 4, "disk": 0}


def test_demote_moves_down_and_refuses_pinned(make_experts):
    xs = make_experts({"a": 2})
    m = manager_with(xs, device=2, host=2)

    async def main():
        async with m.acquire("a"):
            with pytest.raises(MemoryBusyError, match="in use"):
                await m.demote("a", "host")
        await m.demote("a", "host")
        assert m.tier_of("a") == "host"
        await m.demote("a", "disk")
        state = m.experts_state()["a"]
        assert state["tier"] == "disk" and state["pins"] == 0 and state["idle_s"] is not None

    run_virtual(main())
    assert xs["a"].moves == ["disk->device", "device->host", "host->disk"]
