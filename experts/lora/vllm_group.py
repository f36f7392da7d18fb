"""LoRA experts on vLLM: one engine for the base (enable_lora), each request carries its adapter's LoRARequest.

The GPU path of the same config the peft path serves on CPU: the pool's adapter budgets become vLLM's engine
arguments (max_loras adapters on the device, max_cpu_loras in host memory, max_lora_rank) and vLLM's own LRU moves
adapters between them, so this group has no AdapterStore: residency is the engine's. Adapters are exported once
to peft folders (experts/lora/peft_export.py, decompressing ComPEFT ones) and registered with the engine at
start-up (`add_lora`), so a broken adapter fails start-up naming its expert.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from experts.llm.base import BackendError, BackendInfo, Chunk, GenerationRequest, Tier
from experts.llm.vllm_backend import TierUnsupportedError, VLLMBackend
from experts.lora.artifact import load_any_expert
from experts.lora.peft_export import base_linear_shapes, check_against_base, expert_rank, export_peft

log = logging.getLogger(__name__)

# vLLM's LoRAConfig accepts only these slot ranks (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_slot_rank(adapter_rank: int, configured: int | None) -> int:
    """The max_lora_rank to start vLLM with: the configured one (checked), else the smallest vLLM allows that
    holds the largest adapter."""
    if configured is not None:
        if configured not in VLLM_LORA_RANKS:
            raise ValueError(f"max_lora_rank {configured} is not one vLLM accepts {VLLM_LORA_RANKS}")
        if configured < adapter_rank:
            raise ValueError(f"max_lora_rank {configured} is below the largest adapter rank {adapter_rank}")
        return configured
    fits = [r for r in VLLM_LORA_RANKS if r >= adapter_rank]
    if not fits:
        raise ValueError(f"adapter rank {adapter_rank} is over vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}")
    return fits[0]


class VLLMLoraGroup:
    """One vLLM engine (a VLLMBackend of the base) and the adapters of the LoRA experts that name that base."""

    store = None  # vLLM keeps adapter residency itself (max_loras / max_cpu_loras); nothing for the tiers

    def __init__(self, engine: VLLMBackend, adapters: dict[str, str | Path], cache_dir: str | Path,
                 engine_args: dict[str, Any]) -> None:
        self.engine, self.cache_dir = engine, Path(cache_dir)
        self.adapter_paths = {n: Path(p) for n, p in adapters.items()}
        self.engine_args = dict(engine_args)
        self.peft_paths: dict[str, Path] = {}
        self.requests: dict[str, Any] = {}

    def prepare(self) -> None:
        """Read, check and export every adapter (errors name the expert); sets max_lora_rank. No engine yet."""
        shapes = base_linear_shapes(self.engine.model_path)
        ranks = []
        for name, path in sorted(self.adapter_paths.items()):
            label = f"LoRA expert {name!r}"
            if not path.is_dir():
                raise BackendError(f"{label}: adapter folder {path} not found")
            try:
                expert = load_any_expert(path)
                check_against_base(expert, shapes, label)
            except ValueError as err:
                raise BackendError(err if str(err).startswith(label) else f"{label}: {err}") from None
            ranks.append(expert_rank(expert))
            self.peft_paths[name] = export_peft(expert, self.cache_dir)
        try:
            rank = vllm_slot_rank(max(ranks, default=1), self.engine_args.get("max_lora_rank"))
        except ValueError as err:
            raise BackendError(f"LoRA experts {sorted(self.adapter_paths)[:3]} on vLLM: {err}") from None
        self.engine.add_engine_args({**self.engine_args, "max_lora_rank": rank})

    async def open(self) -> None:
        """prepare(), start the engine, register every adapter with it (vLLM loads and checks each one)."""
        import asyncio

        await asyncio.to_thread(self.prepare)
        await self.engine.start()
        for lora_id, name in enumerate(sorted(self.peft_paths), start=1):  # vLLM ids start at 1
            request = make_lora_request(name, lora_id, str(self.peft_paths[name]))
            try:
                await self.engine.engine.add_lora(request)
            except Exception as err:
                raise BackendError(f"LoRA expert {name!r}: vLLM refused its adapter: {err}") from err
            self.requests[name] = request
        log.info("vLLM LoRA group ready", extra={"base": self.engine.model_path, "adapters": len(self.requests),
                                                 "engine_args": self.engine_args})


def make_lora_request(name: str, lora_id: int, path: str) -> Any:
    from vllm.lora.request import LoRARequest

    return LoRARequest(name, lora_id, path)


class VLLMLoraExpertBackend:
    """An expert on a VLLMLoraGroup: its adapter's LoRARequest on every request (None: the plain base)."""

    def __init__(self, group: VLLMLoraGroup, name: str, adapter: str | None, base_label: str) -> None:
        self.group, self.name, self.adapter = group, name, adapter
        extra = {"base": base_label, **({"adapter": str(group.adapter_paths[adapter])} if adapter else {})}
        self.info = BackendInfo(name=name, backend="vllm+lora", model=group.engine.model_path, extra=extra)

    async def start(self) -> None:
        if self.group.engine.engine is None:
            raise BackendError(f"expert {self.name!r}: its vLLM LoRA group has not been started")
        self.info.params, self.info.nbytes = (self.group.engine.info.params, self.group.engine.info.nbytes) \
            if self.adapter is None else (0, 0)
        self.info.extra.update(self.group.engine.info.extra)

    @property
    def tier(self) -> Tier:
        return self.group.engine.tier

    async def to(self, tier: Tier) -> None:
        if tier == self.tier:
            return
        raise TierUnsupportedError(f"expert {self.name!r}: on vLLM the engine moves adapters itself (max_loras on "
                                   f"the device, max_cpu_loras on the host); the base stays on {self.tier!r}")

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        lora = None
        if self.adapter is not None:
            lora = self.group.requests.get(self.adapter)
            if lora is None:
                raise BackendError(f"expert {self.name!r}: its adapter is not registered with the engine")
        return self.group.engine.stream(request, lora, label=self.name)

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        raise BackendError(f"expert {self.name!r}: log-likelihood scoring is not served for LoRA experts")
