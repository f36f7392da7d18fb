"""MixedBatcher around a stand-in runtime: batching, failures, and a caller that leaves while its row decodes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from experts.lora.batcher import MixedBatcher
from experts.lora.runtime import BatchRow, RowResult


class GatedRuntime:
    """generate_batch blocks until `release` is set, then answers each row with its slot number."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []

    def generate_batch(self, rows, temperature=0.0, top_p=1.0, seed=None, on_step=None, streamed=()):
        self.batches.append([r.slot for r in rows])
        self.started.set()
        if not self.release.wait(10):
            raise TimeoutError("the test never released the batch")
        return [RowResult(text=str(r.slot), token_ids=[r.slot], finish_reason="stop", prompt_tokens=1) for r in rows]


def _row(slot: int) -> BatchRow:
    return BatchRow(slot=slot, prompt_ids=[1], max_tokens=4)


def test_rows_that_arrive_together_run_as_one_batch():
    async def go():
        runtime = GatedRuntime()
        runtime.release.set()
        batcher = MixedBatcher(runtime, max_batch=8, window_s=0.01)  # type: ignore[arg-type]
        return runtime, await asyncio.gather(*(batcher.submit(_row(s)) for s in (1, 2, 3)))

    runtime, results = asyncio.run(go())
    assert runtime.batches == [[1, 2, 3]] and [r.text for r in results] == ["1", "2", "3"]


def test_a_caller_that_leaves_mid_batch_returns_only_when_its_batch_ends():
    """Its row keeps decoding on its slot until the batch ends; returning earlier would let the caller unpin the
    slot and the store reload another adapter under the running batch."""

    async def go():
        runtime = GatedRuntime()
        batcher = MixedBatcher(runtime, window_s=0.0)  # type: ignore[arg-type]
        leaving = asyncio.ensure_future(batcher.submit(_row(5)))
        staying = asyncio.ensure_future(batcher.submit(_row(6)))
        await asyncio.to_thread(runtime.started.wait, 10)
        leaving.cancel()
        await asyncio.sleep(0.05)
        held_while_decoding = not leaving.done()
        runtime.release.set()
        await asyncio.wait({leaving})
        return held_while_decoding, leaving.cancelled(), (await staying).text

    held, cancelled, other = asyncio.run(go())
    assert held, "the cancelled caller returned while its row was still decoding"
    assert cancelled and other == "6"


def test_a_caller_that_leaves_before_its_batch_starts_returns_at_once_and_its_row_never_runs():
    async def go():
        runtime = GatedRuntime()
        batcher = MixedBatcher(runtime, window_s=0.05)  # type: ignore[arg-type]
        task = asyncio.ensure_future(batcher.submit(_row(7)))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task}, timeout=1)
        done = task.done()
        await asyncio.sleep(0.1)
        return done, runtime.batches

    done, batches = asyncio.run(go())
    assert done and batches == []


def test_a_failing_batch_fails_each_of_its_callers():
    class Broken(GatedRuntime):
        def generate_batch(self, rows, *args, **kwargs):
            raise RuntimeError("boom")

    async def go():
        batcher = MixedBatcher(Broken(), window_s=0.01)  # type: ignore[arg-type]
        return await asyncio.gather(batcher.submit(_row(1)), batcher.submit(_row(2)), return_exceptions=True)

    assert [str(e) for e in asyncio.run(go())] == ["boom", "boom"]


def test_max_batch_below_one_is_refused():
    with pytest.raises(ValueError, match="max_batch"):
        MixedBatcher(GatedRuntime(), max_batch=0)  # type: ignore[arg-type]
