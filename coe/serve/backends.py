"""Builds the backend object for an expert from its config (config → plain experts objects)."""

from __future__ import annotations

from typing import Any

from coe.config import ExpertConfig
from experts.llm.base import LLMBackend


def resolve_model_ref(ref: str) -> str:
    """registry:<name> → a converted local folder (built on first use); other refs unchanged."""
    if ref.startswith("registry:"):
        from experts.llm.registry_models import resolve_model

        return resolve_model(ref)
    return ref


def build_backend(cfg: ExpertConfig, device: str = "cpu") -> LLMBackend:
    path = resolve_model_ref(cfg.model)
    if cfg.backend == "vllm":
        from experts.llm.vllm_backend import VLLMBackend

        v = cfg.vllm
        return VLLMBackend(
            cfg.name, path, dtype=cfg.dtype, chat_template=cfg.chat_template, max_model_len=v.max_model_len,
            gpu_memory_utilization=v.gpu_memory_utilization, enforce_eager=v.enforce_eager,
            kv_cache_space_gib=v.kv_cache_space_gib, enable_sleep_mode=v.enable_sleep_mode,
            extra_engine_args=v.extra,
        )
    from experts.llm.transformers_backend import TransformersBackend

    common: dict[str, Any] = dict(
        dtype=cfg.dtype, chat_template=cfg.chat_template, device=device, context_length=cfg.context_length,
        fail_on_purpose=cfg.fail_on_purpose, fail_while_file=cfg.fail_while_file)
    if cfg.moerging is not None:
        from experts.llm.moerging_backend import MoErgingBackend

        m = cfg.moerging
        return MoErgingBackend(cfg.name, path, artifact=str(m.artifact), alpha=m.alpha, top_k=m.top_k, **common)
    return TransformersBackend(cfg.name, path, **common)
