"""Runs the router off the request's own path: inline when it is fast, else on one dedicated thread that
routes every prompt waiting at that moment in one batch.

`asyncio.to_thread` per request paid a hop through the default executor (shared with Serve's own work) and
encoded prompts one at a time even when many were waiting; a batch of 32 costs 4.7 ms per prompt against
12.8 ms for one (README, `coe bench routing`). A router whose single call is below `inline_max_ms` (an
ONNX/static encoder) runs on the event loop: a thread hop would then cost more than the routing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from routers.base import RouteDecision

RouteMany = Callable[[list[str]], list[RouteDecision]]


class RouteRunner:
    """`await route(text)`; batching happens only while the router thread is busy, so a lone request waits
    for nothing."""

    def __init__(self, route_many: RouteMany, inline: bool, max_batch: int = 32) -> None:
        self.route_many = route_many
        self.inline = inline
        self.max_batch = max_batch
        self.pending: list[tuple[str, asyncio.Future[RouteDecision]]] = []
        self.busy = False
        self.executor = None if inline else ThreadPoolExecutor(1, thread_name_prefix="coe-router")
        self.batches = 0  # routed batches (for /health and tests)

    @classmethod
    def measured(cls, route_many: RouteMany, inline_max_ms: float, probes: int = 3,
                 max_batch: int = 32) -> RouteRunner:
        """Times the router on one prompt (after a warm-up call) and picks inline or threaded; a limit of 0
        means always threaded and no call at all (a router whose cost varies, e.g. GLIDER writing instructions
        with an LLM through a pool that may not be up yet: the caller warms it up its own way)."""
        if inline_max_ms <= 0:
            return cls(route_many, inline=False, max_batch=max_batch)
        route_many(["warm up the encoder"])
        times = []
        for i in range(probes):
            t0 = time.perf_counter()
            route_many([f"how long does routing one prompt take? ({i})"])
            times.append((time.perf_counter() - t0) * 1000)
        runner = cls(route_many, inline=statistics.median(times) <= inline_max_ms, max_batch=max_batch)
        runner.probe_ms = statistics.median(times)
        return runner

    probe_ms: float | None = None

    async def route(self, text: str) -> RouteDecision:
        if self.inline:
            self.batches += 1
            return self.route_many([text])[0]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RouteDecision] = loop.create_future()
        self.pending.append((text, future))
        if not self.busy:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        live = [(t, f) for t, f in self.pending if not f.done()]  # callers that went away are skipped
        batch, self.pending = live[:self.max_batch], live[self.max_batch:]
        if not batch:
            return
        self.busy = True
        self.batches += 1
        done = loop.run_in_executor(self.executor, self.route_many, [t for t, _ in batch])
        done.add_done_callback(lambda d: self._finish(loop, batch, d))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, asyncio.Future[RouteDecision]]],
                done: asyncio.Future[list[RouteDecision]]) -> None:
        self.busy = False
        error = done.exception()
        for i, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result()[i])
        if self.pending:
            self._start(loop)

    def describe(self) -> dict[str, object]:
        return {"mode": "inline" if self.inline else "thread", "probe_ms": self.probe_ms,
                "max_batch": self.max_batch, "batches": self.batches}
