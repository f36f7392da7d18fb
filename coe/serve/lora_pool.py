"""The LoRA side of an expert pool: one group per base model, a backend per LoRA expert (and per base expert).

Built from the pool's expert configs: every expert with a `base` joins the group of its base model, and a base
that is itself an expert of the pool is served by that group (slot 0 / no LoRARequest), so the base weights are
loaded once. The transformers backend gives a LoraGroup (peft-style mixed batches, adapters through our tiers);
the vllm backend gives a VLLMLoraGroup: one engine with enable_lora and the pool's adapter budgets.
"""

from __future__ import annotations

from typing import Any

from coe.config import ExpertConfig, MemoryConfig
from coe.lora_config import vllm_lora_engine_args
from coe.serve.backends import build_backend, resolve_model_ref
from experts.lora.backend import LoraExpertBackend, LoraGroup, LoraGroupOptions
from experts.lora.vllm_group import VLLMLoraExpertBackend, VLLMLoraGroup

LoraBackend = LoraExpertBackend | VLLMLoraExpertBackend
Group = LoraGroup | VLLMLoraGroup


def build_lora_backends(configs: dict[str, ExpertConfig], memory: MemoryConfig,
                        device: str = "cpu") -> tuple[dict[str, LoraBackend], list[Group]]:
    """Backends of the pool's LoRA experts and of the experts they name as base; ({}, []) when there are none."""
    loras = [c for c in configs.values() if c.base is not None]
    if not loras:
        return {}, []
    backends: dict[str, LoraBackend] = {}
    groups: list[Group] = []
    by_model: dict[str, list[ExpertConfig]] = {}
    for c in loras:
        by_model.setdefault(c.model, []).append(c)
    for model, members in by_model.items():
        base_expert = next((configs[c.base] for c in members if c.base in configs), None)
        lead: ExpertConfig = base_expert or members[0]
        if lead.backend == "vllm":
            group: Group = vllm_group(lead, members, memory)
        else:
            group = torch_group(model, lead, members, memory, device)
        groups.append(group)
        label = base_expert.name if base_expert is not None else model
        make = VLLMLoraExpertBackend if isinstance(group, VLLMLoraGroup) else LoraExpertBackend
        for c in members:
            backends[c.name] = make(group, c.name, c.name, label)  # type: ignore[arg-type]
        if base_expert is not None:
            backends[base_expert.name] = make(group, base_expert.name, None, model)  # type: ignore[arg-type]
    return backends, groups


def vllm_group(lead: ExpertConfig, members: list[ExpertConfig], memory: MemoryConfig) -> VLLMLoraGroup:
    """One vLLM engine for the base, started with enable_lora and the pool's adapter budgets."""
    from experts.llm.moerging_model import resolve_path
    from experts.paths import cache_dir

    a = memory.adapters
    args = vllm_lora_engine_args(lead, members, a.max_loras, a.max_cpu_loras, a.max_lora_rank)
    engine: Any = build_backend(lead)
    return VLLMLoraGroup(engine, {c.name: resolve_path(str(c.adapter)) for c in members},
                         cache_dir() / "lora-peft", args)


def torch_group(model: str, lead: ExpertConfig, members: list[ExpertConfig], memory: MemoryConfig,
                device: str) -> LoraGroup:
    """The base loaded once with K LoRA slots per linear; adapters through the pool's adapter tiers."""
    from experts.llm.moerging_model import resolve_path

    a = memory.adapters
    options = LoraGroupOptions(max_loras=a.max_loras, max_cpu_loras=a.max_cpu_loras, max_lora_rank=a.max_lora_rank,
                               max_batch=a.max_batch, batch_window_s=a.batch_window_ms / 1000,
                               acquire_timeout_s=memory.acquire_timeout_s, policy=memory.policy)
    return LoraGroup(resolve_model_ref(model), {c.name: resolve_path(str(c.adapter)) for c in members},
                     dtype="float32" if lead.dtype == "auto" else lead.dtype,
                     chat_template=lead.chat_template, device=device, options=options)
