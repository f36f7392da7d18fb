"""ExpertPool's request path without Ray: a request starts its expert's move itself (no separate prefetch call)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from coe.api.errors import ExpertUnavailable, Overloaded
from coe.config import MemoryConfig
from coe.serve.expert_pool import ExpertPool
from coe.serve.messages import Refusal
from coe.serve.pool_stats import GenerationStats
from experts.llm.base import Chunk, GenerationRequest, Message
from experts.memory import MemoryBusyError, QueueFullError


class Manager:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def record_route(self, name: str) -> None:
        self.events.append(f"route:{name}")

    def prefetch(self, name: str) -> bool:
        self.events.append(f"prefetch:{name}")
        return True


class Dispatcher:
    def __init__(self, events: list[str], backend: object) -> None:
        self.events, self.backend = events, backend

    @asynccontextmanager
    async def slot(self, expert: str):
        self.events.append(f"slot:{expert}")
        yield self.backend


class Backend:
    async def generate(self, request):
        yield Chunk(text="hi", finish_reason="stop", prompt_tokens=1, completion_tokens=1)


def pool(memory: MemoryConfig, events: list[str]) -> ExpertPool:
    p = ExpertPool.__new__(ExpertPool)  # the request path only: no backends to start
    p.pool, p.memory, p.stats = "p", memory, GenerationStats()
    p.backends = {"a": Backend()}  # type: ignore[dict-item]
    p.lora = {}
    p.manager = Manager(events)  # type: ignore[assignment]
    p.dispatcher = Dispatcher(events, p.backends["a"])  # type: ignore[assignment]
    return p


PAYLOAD = GenerationRequest(messages=(Message("user", "x"),), max_tokens=2)


@pytest.mark.parametrize("call", ["generate", "stream"])
def test_a_tiered_request_counts_its_route_and_starts_the_move_before_it_waits_for_a_slot(call):
    events: list[str] = []
    p = pool(MemoryConfig(device_bytes=1), events)

    async def main():
        if call == "generate":
            return await p.generate("a", PAYLOAD)
        return [item async for item in p.stream("a", PAYLOAD)][-1]

    assert asyncio.run(main()) == Chunk(text="hi", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
    assert events == ["route:a", "prefetch:a", "slot:a"]


def test_no_prefetch_without_tiers_or_when_switched_off():
    for memory in (MemoryConfig(), MemoryConfig(device_bytes=1, prefetch_on_route=False)):
        events: list[str] = []
        asyncio.run(pool(memory, events).generate("a", PAYLOAD))
        assert events == ["slot:a"]


class RefusingDispatcher(Dispatcher):
    def __init__(self, events: list[str], error: Exception) -> None:
        super().__init__(events, None)
        self.error = error

    @asynccontextmanager
    async def slot(self, expert: str):
        raise self.error
        yield


@pytest.mark.parametrize("call", ["generate", "stream"])
@pytest.mark.parametrize("error,cls,status", [(QueueFullError("queue of 'a' is full"), Overloaded, 429),
                                              (MemoryBusyError("no device room in 60 s"), ExpertUnavailable, 503)])
def test_a_refused_request_is_a_typed_refusal_not_an_error_dict(call, error, cls, status):
    p = pool(MemoryConfig(), [])
    p.dispatcher = RefusingDispatcher([], error)  # type: ignore[assignment]

    async def main():
        if call == "generate":
            return await p.generate("a", PAYLOAD)
        return [item async for item in p.stream("a", PAYLOAD)]

    out = asyncio.run(main())
    refusal = out if call == "generate" else out[0]
    assert call == "generate" or len(out) == 1
    assert isinstance(refusal, Refusal) and type(refusal.error) is cls
    assert refusal.error.status == status and refusal.error.message == str(error) and refusal.error.param == "model"
