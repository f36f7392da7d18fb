"""Eviction choices of LRU and cost-aware on crafted traces: exact victims, exact reuse values."""

from __future__ import annotations

import pytest

from experts.memory import Candidate, CostAwarePolicy, LRUPolicy, TierBudgets, TierManager, make_policy
from experts.memory.policies import victim_order
from experts.memory.simulate import run_virtual


def names(cands):
    return [c.name for c in cands]


def test_lru_evicts_least_recently_used_first():
    p = LRUPolicy()
    for t, name in enumerate(["a", "b", "c", "a"]):
        p.touch(name, float(t))
    cands = [Candidate(n, 1, 1.0) for n in ("a", "b", "c", "d")]
    assert names(victim_order(p, cands, 4.0)) == ["d", "b", "c", "a"]  # d was never used


def test_lru_orders_touches_at_the_same_instant():
    p = LRUPolicy()
    p.touch("b", 0.0)
    p.touch("a", 0.0)
    assert names(victim_order(p, [Candidate("a", 1, 1.0), Candidate("b", 1, 1.0)], 0.0)) == ["b", "a"]


def test_cost_aware_reuse_is_a_decayed_count_over_a_window():
    p = CostAwarePolicy(half_life_s=10.0, window_s=100.0)
    for t in (0.0, 10.0, 20.0):
        p.record_route("a", t)
    assert p.reuse("a", 20.0) == pytest.approx(1.75)  # 1/4 + 1/2 + 1
    assert p.reuse("a", 30.0) == pytest.approx(0.875)
    assert p.reuse("a", 110.5) == pytest.approx(0.5 ** 9.05)  # only the route at t=20 is in the window
    assert p.reuse("a", 200.0) == 0.0
    assert p.reuse("never", 0.0) == 0.0


def test_cost_aware_evicts_lowest_reuse_times_reload_cost():
    p = CostAwarePolicy(half_life_s=10.0, window_s=100.0)
    for t in (0.0, 10.0, 20.0):
        p.record_route("a", t)
    p.record_route("b", 20.0)
    cands = [Candidate("a", 1, 1.0), Candidate("b", 4, 4.0), Candidate("c", 100, 100.0)]
    # scores: a 1.75 * 1 = 1.75, b 1 * 4 = 4, c never routed = 0
    assert names(victim_order(p, cands, 20.0)) == ["c", "a", "b"]


def test_cost_aware_breaks_ties_by_recency():
    p = CostAwarePolicy()
    p.touch("b", 0.0)
    p.touch("a", 1.0)
    assert names(victim_order(p, [Candidate("a", 1, 1.0), Candidate("b", 1, 1.0)], 2.0)) == ["b", "a"]


def test_make_policy_by_config_name():
    assert isinstance(make_policy("lru"), LRUPolicy)
    cost = make_policy("cost_aware", half_life_s=5.0, window_s=50.0)
    assert isinstance(cost, CostAwarePolicy) and (cost.half_life_s, cost.window_s) == (5.0, 50.0)
    with pytest.raises(ValueError, match="unknown eviction policy"):
        make_policy("mru")  # type: ignore[arg-type]


def _victim_through_manager(policy, make_experts) -> list[str]:
    """Device fits a (4) + b (1); a is used first, b is routed three times as often; then c (1) needs room."""
    xs = make_experts({"a": 4, "b": 1, "c": 1})
    m = TierManager(TierBudgets(device=5, host=None), policy=policy)
    for name, x in xs.items():
        m.register(name, x)

    async def main():
        for name in ("a", "b"):
            async with m.acquire(name):
                pass
        m.record_route("a")
        for _ in range(3):
            m.record_route("b")
        async with m.acquire("c"):
            pass

    run_virtual(main())
    return sorted(n for n, x in xs.items() if "device->host" in x.moves)


def test_lru_victim_on_a_trace(make_experts):
    assert _victim_through_manager(LRUPolicy(), make_experts) == ["a"]


def test_cost_aware_victim_on_the_same_trace(make_experts):
    # reload cost is size / host->device bandwidth: a scores 1 x 4 units, b 3 x 1 -> b goes though used last
    assert _victim_through_manager(CostAwarePolicy(half_life_s=1e6), make_experts) == ["b"]
