"""The virtual-time loop and simulated experts the other memory tests rely on."""

from __future__ import annotations

import asyncio

import pytest

from experts.memory.simulate import Ledger, SimulatedExpert, run_virtual


def test_virtual_clock_jumps_over_sleeps():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.gather(asyncio.sleep(5), asyncio.sleep(3))
        t = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), 7)
        return t, loop.time()

    assert run_virtual(main()) == (5.0, 12.0)


def test_simulated_expert_occupies_both_tiers_while_copying():
    ledger = Ledger({"device": 5, "host": 5})
    x = SimulatedExpert("a", 4, start_tier="host", bandwidth={"host->device": 2.0}, ledger=ledger)

    async def main():
        move = asyncio.create_task(x.to("device"))
        await asyncio.sleep(1)
        during = dict(ledger.bytes)
        await move
        return during, asyncio.get_running_loop().time()

    during, t = run_virtual(main())
    assert (during["device"], during["host"], t) == (4, 4, 2.0)
    assert ledger.bytes == {"device": 4, "host": 0, "disk": 0}
    assert x.moves == ["host->device"] and ledger.violations == []


def test_ledger_reports_a_budget_overrun():
    ledger = Ledger({"device": 3})
    ledger.add("device", 4)
    assert ledger.violations == ["device: 4 B > budget 3 B"]
