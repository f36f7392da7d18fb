"""Ray Serve deployment hosting a pool of expert LLMs: tiered weight memory and expert-affinity scheduling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from coe.config import ExpertConfig, MemoryConfig
from coe.serve.backends import build_backend
from coe.serve.lora_pool import build_lora_backends
from coe.serve.messages import Refusal, memory_refusal
from coe.serve.pool_stats import GenerationStats
from experts.llm.base import BackendError, Chunk, GenerationRequest, LLMBackend, Tier
from experts.memory import ExpertQueues, MemoryBusyError, QueueFullError, TierBudgets, TierManager, make_policy
from experts.memory.dispatcher import AffinityDispatcher

log = logging.getLogger(__name__)


def merge_adapter_snapshot(snap: dict[str, Any], adapters: dict[str, Any]) -> None:
    """Adapter gauges and counters beside the full models' in one pool snapshot, keyed "adapter:<tier|kind>", so
    /metrics shows adapter residency and moves with the same families and a distinguishable label."""
    for key in ("residency", "bytes", "hits", "misses", "bytes_moved", "moves", "evictions", "move_seconds"):
        for k, v in adapters.get(key, {}).items():
            snap.setdefault(key, {})[f"adapter:{k}"] = v
    snap["budgets"]["adapter:device"] = adapters["budgets"]["device"]
    for key in ("pins", "prefetches", "waits", "wait_seconds", "busy_errors"):
        snap[key] = snap.get(key, 0) + adapters.get(key, 0)


class ExpertPool:
    """Owns its experts' backends; with memory budgets only some are device-resident, the rest wait in
    host memory or on disk and are swapped in per request (a request starts its expert's move on arrival)."""

    async def __init__(self, pool: str, experts: list[dict[str, Any]], memory: dict[str, Any] | None = None,
                       max_queued: int = 64) -> None:
        self.pool = pool
        self.configs = {e["name"]: ExpertConfig.model_validate(e) for e in experts}
        self.memory = MemoryConfig.model_validate(memory or {})
        # LoRA experts and their bases: one group per base model, outside the TierManager of full models
        # (adapters have their own, experts/lora/store.py); the base stays on the device.
        self.lora, self.lora_groups = build_lora_backends(self.configs, self.memory)
        self.backends: dict[str, LLMBackend] = {n: self.lora.get(n) or build_backend(c)  # type: ignore[misc]
                                                for n, c in self.configs.items()}
        for group in self.lora_groups:
            await group.open()
        for name in self.lora:
            await self.backends[name].start()
        self.stats = GenerationStats()
        mem = self.memory
        self.manager = TierManager(
            TierBudgets(device=mem.device_bytes, host=mem.host_bytes, acquire_timeout_s=mem.acquire_timeout_s),
            policy=make_policy(mem.policy))
        if mem.tiered:
            await self._warm_tiers()
        else:
            for name, backend in self.backends.items():
                if name in self.lora:
                    continue
                await backend.start()
                self.manager.register(name, backend)
                log.info("expert ready", extra={"expert": name, "pool": pool})
        queues: ExpertQueues[Any] = ExpertQueues(mode=mem.scheduling, max_queue=max_queued,
                                                 max_skips=mem.max_skips, max_wait_s=mem.max_wait_s)
        self.dispatcher = AffinityDispatcher(self.manager, queues,
                                             concurrency=mem.concurrency if mem.tiered else 10_000)

    async def _warm_tiers(self) -> None:
        """No cold start on the request path: every expert goes as far up as the budgets allow at start-up."""
        full = {n: b for n, b in self.backends.items() if n not in self.lora}
        for name, backend in full.items():
            self.manager.register(name, backend)
        for _ in range(2):  # disk -> host, then host -> device where room is left
            for name in full:
                self.manager.prefetch(name)
            await self.manager.wait_idle()
        log.info("pool warmed", extra={"pool": self.pool, "tiers": {n: b.tier for n, b in self.backends.items()}})

    @asynccontextmanager
    async def _running(self, expert: str) -> AsyncIterator[LLMBackend]:
        if expert not in self.backends:
            raise BackendError(f"expert {expert!r} is not hosted by pool {self.pool!r}")
        if expert in self.lora:  # pins its adapter itself and joins the group's mixed batches
            yield self.lora[expert]  # type: ignore[misc]
            return
        if self.memory.tiered and self.memory.prefetch_on_route:
            # Routing drives memory: the move starts as the request arrives, before it waits for a slot. The
            # gateway used to send a separate prefetch call, a second handle call per request that arrived here
            # at the same moment as this one.
            self.manager.record_route(expert)
            self.manager.prefetch(expert)
        async with self.dispatcher.slot(expert) as backend:
            yield backend  # type: ignore[misc]

    async def generate(self, expert: str, request: GenerationRequest) -> Chunk | Refusal:
        """The whole completion as one Chunk (all the text, finish_reason, usage), or a Refusal when the pool is
        overloaded (coe/serve/messages.py)."""
        parts: list[str] = []
        last = Chunk(text="")
        try:
            async with self._running(expert) as backend:
                with self.stats.track(expert):
                    async for chunk in backend.generate(request):
                        parts.append(chunk.text)
                        last = chunk
        except (QueueFullError, MemoryBusyError) as err:
            return memory_refusal(err)
        return replace(last, text="".join(parts))

    async def stream(self, expert: str, request: GenerationRequest) -> AsyncIterator[Chunk | Refusal]:
        """Token deltas as they come; the last Chunk carries finish_reason and usage. A refused request yields
        one Refusal, before any text."""
        try:
            async with self._running(expert) as backend:
                with self.stats.track(expert):
                    async for chunk in backend.generate(request):
                        yield chunk
        except (QueueFullError, MemoryBusyError) as err:
            yield memory_refusal(err)

    async def prefetch(self, expert: str) -> bool:
        """Count the expert for reuse and start bringing it up (returns at once); requests do this themselves."""
        if expert not in self.backends:
            return False
        lora = self.lora.get(expert)
        if lora is not None:
            return bool(lora.adapter and lora.group.store and lora.group.store.prefetch(lora.adapter))
        self.manager.record_route(expert)
        return self.manager.prefetch(expert)

    async def set_tier(self, expert: str, tier: Tier) -> list[dict[str, Any]]:
        """Admin: load (to device) or offload (to host/disk) one expert through the TierManager."""
        if expert not in self.backends:
            raise BackendError(f"expert {expert!r} is not hosted by pool {self.pool!r}")
        if expert in self.lora:
            await self.lora[expert].to(tier)
        elif tier == "device":
            async with self.manager.acquire(expert):
                pass
        else:
            await self.manager.demote(expert, tier)
        log.info("expert moved", extra={"expert": expert, "tier": tier})
        return await self.describe()

    async def memory_snapshot(self) -> dict[str, Any]:
        snap = self.manager.snapshot()
        for group in self.lora_groups:
            if group.store is not None:
                merge_adapter_snapshot(snap, group.store.manager.snapshot())
        return snap

    async def describe(self) -> list[dict[str, Any]]:
        snap = self.manager.experts_state()
        for backend in self.lora.values():
            store = backend.group.store
            state = store.manager.experts_state() if store is not None else {}
            snap[backend.name] = {**state.get(backend.adapter or "", {"tier": "device", "pins": 0}),
                                  "base": backend.info.extra.get("base"), "adapter": backend.info.extra.get("adapter")}
        return [
            {"name": n, "pool": self.pool, "backend": b.info.backend, "tier": b.tier,
             "params": b.info.params, "bytes": b.info.nbytes, "generations": self.stats.of(n)} | snap.get(n, {})
            for n, b in self.backends.items()
        ]
