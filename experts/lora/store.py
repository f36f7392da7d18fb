"""Adapters through the memory tiers: K device slots, host copies, the rest on disk, moved by a TierManager.

Each adapter is a `Movable` whose size is one slot (every slot has the pool's rank, so device cost is uniform),
and the TierManager's device budget is K slots: the same eviction policy, pinning, prefetch, single-flight loads
and metrics as full models get. disk → host reads and verifies the artifact (decompressing a ComPEFT one),
host → device copies into a free slot, device → host copies the slot back and frees it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experts.llm.lora_experts import LoraExpert
from experts.lora.artifact import load_any_expert
from experts.lora.runtime import HostCopy, MultiLoraModel
from experts.memory import TierBudgets, TierManager, make_policy
from experts.memory.defaults import ACQUIRE_TIMEOUT_S
from experts.memory.movable import Tier


@dataclass
class AdapterInfo:
    """What the TierManager reads (nbytes) and what /v1/experts shows."""

    name: str
    path: str
    nbytes: int
    compressed: bool = False


class UnknownAdapter(KeyError):
    """A request named an adapter this store does not hold (the serving layer answers 404)."""


class AdapterHandle:
    """One adapter's place in the tiers: its host copy (tensors in RAM) or its device slot."""

    def __init__(self, store: AdapterStore, info: AdapterInfo, loader: Callable[[], LoraExpert]) -> None:
        self.store, self.info, self._loader = store, info, loader
        self._tier: Tier = "disk"
        self.host: HostCopy | None = None
        self.slot: int | None = None
        self.scaling = 0.0
        self.rank = 0
        self.modules: list[str] = []

    @property
    def tier(self) -> Tier:
        return self._tier

    async def to(self, tier: Tier) -> None:
        await asyncio.to_thread(self._move, tier)

    def _move(self, tier: Tier) -> None:
        runtime = self.store.runtime
        if tier == "device":
            if self.host is None:
                self._read_disk()
            assert self.host is not None
            slot = self.store.take_slot()
            runtime.load_slot(slot, self.host, self.scaling)
            self.slot, self.host = slot, None
        elif tier == "host":
            if self.slot is not None:
                self.host = runtime.read_slot(self.slot, list(self.modules), self.rank)
                self._free_slot()
            elif self.host is None:
                self._read_disk()
        else:
            if self.slot is not None:
                self._free_slot()
            self.host = None
        self._tier = tier

    def _read_disk(self) -> None:
        expert = self._loader()
        self.store.runtime.check(expert, f"adapter {self.info.name!r}")
        self.scaling = expert.scaling
        self.rank = next(iter(expert.modules.values()))[0].shape[0]
        self.modules = list(expert.modules)
        self.host = self.store.runtime.host_copy(expert, pin=self.store.runtime.device.type == "cuda")

    def _free_slot(self) -> None:
        assert self.slot is not None
        self.store.runtime.clear_slot(self.slot)
        self.store.give_slot(self.slot)
        self.slot = None


class AdapterStore:
    """The adapters of one base model: registration, pinned acquires (yielding the slot) and prefetch."""

    def __init__(self, runtime: MultiLoraModel, host_adapters: int | None = None,
                 acquire_timeout_s: float = ACQUIRE_TIMEOUT_S, policy: str = "lru") -> None:
        self.runtime = runtime
        self.slot_bytes = sum((layer.base.in_features + layer.base.out_features) * runtime.rank
                              for layer in runtime.layers.values()) * runtime.dtype.itemsize
        self.manager = TierManager(
            TierBudgets(device=runtime.slots * self.slot_bytes,
                        host=None if host_adapters is None else host_adapters * self.slot_bytes,
                        acquire_timeout_s=acquire_timeout_s), policy=make_policy(policy))  # type: ignore[arg-type]
        self.handles: dict[str, AdapterHandle] = {}
        self._free = list(range(runtime.slots, 0, -1))
        self._slot_lock = threading.Lock()

    def register(self, name: str, path: str | Path) -> AdapterHandle:
        """Adds an adapter that is on disk (a dense or ComPEFT folder); it moves up on acquire or prefetch."""
        from experts.lora.artifact import KIND, artifact_kind

        folder = Path(path)
        info = AdapterInfo(name, str(folder), self.slot_bytes, compressed=artifact_kind(folder) == KIND)
        handle = AdapterHandle(self, info, lambda: load_any_expert(folder))
        self.handles[name] = handle
        self.manager.register(name, handle)
        return handle

    def take_slot(self) -> int:
        with self._slot_lock:
            if not self._free:
                raise RuntimeError("no free LoRA slot although the tier budget allowed a load (accounting bug)")
            return self._free.pop()

    def give_slot(self, slot: int) -> None:
        with self._slot_lock:
            self._free.append(slot)

    @asynccontextmanager
    async def acquire(self, name: str) -> AsyncIterator[int]:
        """The adapter resident in a slot and pinned there until the block exits; yields the slot."""
        if name not in self.handles:
            raise UnknownAdapter(f"adapter {name!r} is not served here (known: {sorted(self.handles)[:5]}…)")
        async with self.manager.acquire(name):
            slot = self.handles[name].slot
            assert slot is not None
            yield slot

    def prefetch(self, name: str) -> bool:
        if name not in self.handles:
            return False
        self.manager.record_route(name)
        return self.manager.prefetch(name)

    async def warm(self) -> None:
        """Start-up: every adapter as far up as the budgets allow (disk → host, then host → device)."""
        for _ in range(2):
            for name in self.handles:
                self.manager.prefetch(name)
            await self.manager.wait_idle()

    def residency(self) -> dict[str, Any]:
        """Counts per tier, slots in use, and the manager's move metrics."""
        snap = self.manager.snapshot()
        return {"adapters": len(self.handles), "slots": self.runtime.slots,
                "slots_in_use": self.runtime.slots - len(self._free), **snap}
