"""RouteRunner: inline for fast routers, one router thread that batches whoever is waiting for a slow one."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from coe.serve.route_runner import RouteRunner
from routers.base import RouteDecision


class SlowRouter:
    """Routes a text to the expert named by its first word, taking `delay_s` per call; records the batches."""

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()

    def __call__(self, texts: list[str]) -> list[RouteDecision]:
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail_on in texts:
            raise RuntimeError(f"cannot route {self.fail_on!r}")
        return [RouteDecision(t.split()[0], None, 1.0, "test") for t in texts]


def test_measured_picks_inline_for_a_fast_router_and_the_thread_for_a_slow_one():
    assert RouteRunner.measured(SlowRouter(0.0), inline_max_ms=2.0).inline
    slow = RouteRunner.measured(SlowRouter(0.005), inline_max_ms=2.0)
    assert not slow.inline and slow.probe_ms is not None and slow.probe_ms >= 5.0
    assert slow.describe()["mode"] == "thread"
    router = SlowRouter(0.0)
    assert not RouteRunner.measured(router, inline_max_ms=0.0).inline  # 0: always threaded, not even probed
    assert router.calls == []  # nor called: GLIDER's llm writer pool may not be up yet


def test_inline_runs_on_the_callers_thread():
    router = SlowRouter()
    runner = RouteRunner(router, inline=True)
    decision = asyncio.run(runner.route("math please"))
    assert decision.expert == "math"
    assert router.threads == {threading.current_thread().name}


def test_a_lone_request_is_routed_at_once_on_the_router_thread():
    router = SlowRouter()
    runner = RouteRunner(router, inline=False)
    assert asyncio.run(runner.route("code now")).expert == "code"
    assert router.calls == [["code now"]]
    assert all(name.startswith("coe-router") for name in router.threads)


def test_prompts_waiting_while_the_router_is_busy_go_in_one_batch_each_gets_its_own_answer():
    router = SlowRouter(delay_s=0.05)
    runner = RouteRunner(router, inline=False, max_batch=3)

    async def main() -> list[str]:
        first = asyncio.create_task(runner.route("a0"))
        await asyncio.sleep(0.01)  # the router thread is now busy with a0
        rest = [asyncio.create_task(runner.route(f"b{i} x")) for i in range(5)]
        return [d.expert for d in await asyncio.gather(first, *rest)]

    assert asyncio.run(main()) == ["a0", "b0", "b1", "b2", "b3", "b4"]
    assert router.calls == [["a0"], ["b0 x", "b1 x", "b2 x"], ["b3 x", "b4 x"]]


def test_a_router_error_reaches_every_caller_of_its_batch_and_the_runner_goes_on():
    router = SlowRouter(delay_s=0.03, fail_on="bad")
    runner = RouteRunner(router, inline=False)

    async def main() -> None:
        first = asyncio.create_task(runner.route("ok0"))
        await asyncio.sleep(0.01)
        batch = [asyncio.create_task(runner.route(t)) for t in ("bad", "fine")]
        assert (await first).expert == "ok0"
        for task in batch:
            with pytest.raises(RuntimeError, match="cannot route 'bad'"):
                await task
        assert (await runner.route("later")).expert == "later"

    asyncio.run(main())


def test_a_caller_that_went_away_is_left_out_of_the_next_batch():
    router = SlowRouter(delay_s=0.05)
    runner = RouteRunner(router, inline=False)

    async def main() -> None:
        first = asyncio.create_task(runner.route("a"))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(runner.route("gone"))
        kept = asyncio.create_task(runner.route("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        assert (await first).expert == "a" and (await kept).expert == "kept"

    asyncio.run(main())
    assert router.calls == [["a"], ["kept"]]
