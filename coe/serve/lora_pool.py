"""The LoRA side of an expert pool: one LoraGroup per base model, a LoraExpertBackend per LoRA expert (and base).

Built from the pool's expert configs: every expert with a `base` joins the group of its base model, and a base
that is itself an expert of the pool is served by that group on slot 0, so the base weights are loaded once.
"""

from __future__ import annotations

from typing import Any

from coe.config import ExpertConfig, MemoryConfig
from coe.serve.backends import resolve_model_ref
from experts.lora.backend import LoraExpertBackend, LoraGroup, LoraGroupOptions


def build_lora_backends(configs: dict[str, ExpertConfig], memory: MemoryConfig,
                        device: str = "cpu") -> tuple[dict[str, LoraExpertBackend], list[LoraGroup]]:
    """Backends of the pool's LoRA experts and of the experts they name as base; ({}, []) when there are none."""
    from experts.llm.moerging_model import resolve_path

    loras = [c for c in configs.values() if c.base is not None]
    if not loras:
        return {}, []
    if any(c.backend != "transformers" for c in loras):
        bad = sorted(c.name for c in loras if c.backend != "transformers")
        raise ValueError(f"LoRA experts {bad}: backend vllm is validated as config only here "
                         f"(coe.lora_config.vllm_lora_engine_args); serving them needs the transformers backend")
    a = memory.adapters
    options = LoraGroupOptions(max_loras=a.max_loras, max_cpu_loras=a.max_cpu_loras, max_lora_rank=a.max_lora_rank,
                               max_batch=a.max_batch, batch_window_s=a.batch_window_ms / 1000,
                               acquire_timeout_s=memory.acquire_timeout_s, policy=memory.policy)
    by_model: dict[str, list[ExpertConfig]] = {}
    for c in loras:
        by_model.setdefault(c.model, []).append(c)
    backends: dict[str, LoraExpertBackend] = {}
    groups = []
    for model, members in by_model.items():
        base_expert = next((configs[c.base] for c in members if c.base in configs), None)
        lead: Any = base_expert or members[0]
        group = LoraGroup(resolve_model_ref(model), {c.name: resolve_path(str(c.adapter)) for c in members},
                          dtype="float32" if lead.dtype == "auto" else lead.dtype,
                          chat_template=lead.chat_template, device=device, options=options)
        groups.append(group)
        label = base_expert.name if base_expert is not None else model
        for c in members:
            backends[c.name] = LoraExpertBackend(group, c.name, c.name, label)
        if base_expert is not None:
            backends[base_expert.name] = LoraExpertBackend(group, base_expert.name, None, model)
    return backends, groups
