"""LoRA experts in the config: resolve each `base` (another expert or a model ref) into the expert's model and pool.

Experts that share a base share one pool deployment, which holds the base once (experts/lora/backend.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coe.config import ExpertConfig


def known_model_ref(ref: str) -> bool:
    """A registry model the registry knows, or a local folder (no downloads at run time, so no hub ids)."""
    if ref.startswith("registry:"):
        from experts.llm.registry_models import REGISTRY

        return ref.removeprefix("registry:") in REGISTRY
    return Path(ref).is_dir()


def lora_pool_name(ref: str) -> str:
    """The pool of LoRA experts over a model ref that is not an expert: "lora-" + a slug of the ref."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", ref.lower().removeprefix("registry:")).strip("-.")
    return ("lora-" + slug)[:64]


def resolve_lora_bases(experts: list[ExpertConfig]) -> None:
    """Fills in model and pool of every LoRA expert (in place); raises ValueError naming the expert."""
    by_name = {e.name: e for e in experts}
    for e in experts:
        if e.base is None:
            continue
        base = by_name.get(e.base)
        if base is not None:
            if base.base is not None:
                raise ValueError(f"expert {e.name!r}: base {e.base!r} is itself a LoRA expert (no chains)")
            if base.backend != e.backend:
                raise ValueError(f"expert {e.name!r}: backend {e.backend} differs from its base {base.name!r}")
            model, pool = base.model, base.pool_name
        elif known_model_ref(e.base):
            model, pool = e.base, lora_pool_name(e.base)
        else:
            raise ValueError(f"expert {e.name!r}: unknown base {e.base!r} (not an expert of this config, a known "
                             f"registry: model or a local folder)")
        if e.model and e.model != model:
            raise ValueError(f"expert {e.name!r}: model {e.model!r} differs from its base's {model!r}")
        if e.pool is not None and e.pool != pool:
            raise ValueError(f"expert {e.name!r}: pool {e.pool!r} differs from its base's pool {pool!r}")
        e.model, e.pool = model, pool
    pools: dict[str, set[str]] = {}
    for e in experts:
        if e.base is not None:
            pools.setdefault(e.pool_name, set()).add(e.model)
    mixed = {p: sorted(m) for p, m in pools.items() if len(m) > 1}
    if mixed:
        raise ValueError(f"LoRA experts of one pool must share one base model: {mixed}")


def vllm_lora_engine_args(base: ExpertConfig, loras: list[ExpertConfig], max_loras: int,
                          max_cpu_loras: int | None, max_lora_rank: int | None) -> dict[str, Any]:
    """The vLLM engine arguments of a base that serves LoRA experts (experts/lora/vllm_group.py starts them);
    a max_lora_rank vLLM would refuse is a ValueError naming the base."""
    from experts.lora.vllm_group import VLLM_LORA_RANKS

    if max_lora_rank is not None and max_lora_rank not in VLLM_LORA_RANKS:
        raise ValueError(f"LoRA experts of {base.name!r} on vLLM: memory.adapters.max_lora_rank {max_lora_rank} "
                         f"is not one vLLM accepts {VLLM_LORA_RANKS}")
    args: dict[str, Any] = {"enable_lora": True, "max_loras": min(max_loras, max(1, len(loras)))}
    if max_cpu_loras is not None:
        args["max_cpu_loras"] = max(max_cpu_loras, args["max_loras"])
    if max_lora_rank is not None:
        args["max_lora_rank"] = max_lora_rank
    return args
