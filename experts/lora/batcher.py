"""Mixed-adapter batching: requests for different adapters that arrive together run as one `generate`.

Static batches (Punica/S-LoRA without continuous batching): the first request waits `window_s` for company,
then up to `max_batch` waiting requests with the same sampling settings decode together, each on its own slot.
A request arriving mid-batch waits for the next one. A request with a token sink sees its row's tokens after every
decoding step (streaming); the sink runs on the event loop, not in the worker thread. A caller that goes away
while its row decodes returns only when that batch ends: the row keeps using its adapter's slot until then, so the
slot must stay pinned (its caller holds the pin) and is not reloaded under the running batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from experts.lora.runtime import BatchRow, MultiLoraModel, RowResult


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class _Waiting:
    row: BatchRow
    sampling: Sampling
    future: asyncio.Future[RowResult] = field(repr=False)
    sink: Callable[[list[int]], None] | None = field(default=None, repr=False)
    running: asyncio.Future[None] | None = field(default=None, repr=False)  # its batch, once it decodes


class MixedBatcher:
    """Collects rows for one runtime and runs them in batches in a worker thread."""

    def __init__(self, runtime: MultiLoraModel, max_batch: int = 16, window_s: float = 0.005) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.runtime, self.max_batch, self.window_s = runtime, max_batch, window_s
        self._queue: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def submit(self, row: BatchRow, sampling: Sampling = Sampling(),
                     sink: Callable[[list[int]], None] | None = None) -> RowResult:
        """The row's result once its batch finishes; `sink(ids)` gets its new token ids so far after each step."""
        future: asyncio.Future[RowResult] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(row, sampling, future, sink)
        self._queue.append(waiting)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        try:
            return await future
        except asyncio.CancelledError:
            if waiting.running is not None:  # the row is decoding on its slot: hold the caller until the batch ends
                await asyncio.wait({waiting.running})
            raise

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(self.window_s)
            first = self._queue[0].sampling
            batch = [w for w in self._queue if w.sampling == first and not w.future.done()][:self.max_batch]
            for w in batch:
                self._queue.remove(w)
            while self._queue and self._queue[0].future.done():  # callers that went away
                self._queue.popleft()
            if not batch:
                continue
            sinks = {i: w.sink for i, w in enumerate(batch) if w.sink is not None}
            on_step = _on_loop(asyncio.get_running_loop(), sinks)
            running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for w in batch:
                w.running = running
            try:
                results = await asyncio.to_thread(self.runtime.generate_batch, [w.row for w in batch],
                                                  first.temperature, first.top_p, first.seed,
                                                  on_step if sinks else None, sorted(sinks))
            except Exception as err:  # every caller of the batch sees the failure
                for w in batch:
                    if not w.future.done():
                        w.future.set_exception(err)
                continue
            finally:
                running.set_result(None)
            self.batches += 1
            self.rows += len(batch)
            for w, r in zip(batch, results, strict=True):
                if not w.future.done():
                    w.future.set_result(r)


def _on_loop(loop: asyncio.AbstractEventLoop,
             sinks: dict[int, Callable[[list[int]], None]]) -> Callable[[int, list[int]], None]:
    """A step sink for the worker thread that hands each row's tokens to its sink on the event loop."""
    def on_step(i: int, ids: list[int]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(sinks[i], ids)
    return on_step
