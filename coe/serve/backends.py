"""Builds the backend object for an expert from its config (config → plain experts objects)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from coe.config import ExpertConfig
from experts.llm.base import BackendOptions, LLMBackend


def resolve_model_ref(ref: str) -> str:
    """registry:<name> → a converted local folder (built on first use); other refs unchanged."""
    if ref.startswith("registry:"):
        from experts.llm.registry_models import resolve_model

        return resolve_model(ref)
    return ref


def backend_options(cfg: ExpertConfig, device: str = "cpu") -> BackendOptions:
    """The part of an expert's config a local backend runs by, built once here."""
    return BackendOptions(dtype=cfg.dtype, chat_template=cfg.chat_template, context_length=cfg.context_length,
                          device=device)


def backend_factory(ref: str) -> Callable[[ExpertConfig], LLMBackend]:
    """`package.module:factory` → the callable; a clear error naming the reference when it cannot be imported."""
    module_name, _, attr = ref.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"backend {ref!r} cannot be loaded: {err}") from err
    if not callable(factory):
        raise ValueError(f"backend {ref!r} is not callable")
    return cast(Callable[[ExpertConfig], LLMBackend], factory)


def build_backend(cfg: ExpertConfig, device: str = "cpu") -> LLMBackend:
    if ":" in cfg.backend:
        return backend_factory(cfg.backend)(cfg)
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

    options = backend_options(cfg, device)
    if cfg.moerging is not None:
        from experts.llm.moerging_backend import MoErgingBackend

        m = cfg.moerging
        return MoErgingBackend(cfg.name, path, options, artifact=str(m.artifact), alpha=m.alpha, top_k=m.top_k)
    return TransformersBackend(cfg.name, path, options)
