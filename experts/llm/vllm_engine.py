"""Builds a vLLM AsyncLLM engine: platform checks, process environment and engine arguments in one place."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Settings that make the engine start inside a Ray actor on CPU. vLLM always runs its EngineCore in a
# spawned process; on CPU it would also spawn a worker process and pin its OpenMP threads to cores it picks
# itself ("auto"), ignoring what Ray gave the actor. Running the worker inside EngineCore ("uni" executor,
# which vLLM allows only when V1 multiprocessing is off) and leaving thread placement to Ray avoids both.
CPU_ENV_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
}


@dataclass(frozen=True)
class Platform:
    """What the installed vLLM build can do here."""

    device: str
    sleep_mode: bool

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"


def detect_platform() -> Platform:
    from vllm.platforms import current_platform

    sleep_mode = current_platform.is_sleep_mode_available()
    return Platform(device=str(current_platform.device_type), sleep_mode=sleep_mode)


def prepare_cpu_env(kv_cache_space_gib: int) -> None:
    """Process environment the spawned EngineCore inherits; explicit user settings win, except the KV size."""
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_space_gib))
    for key, value in CPU_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def build_engine(
    model_path: str,
    *,
    platform: Platform,
    dtype: str,
    max_model_len: int,
    gpu_memory_utilization: float,
    enforce_eager: bool,
    kv_cache_space_gib: int,
    enable_sleep_mode: bool,
    extra_engine_args: dict[str, Any] | None,
) -> Any:
    """An AsyncLLM for a local model folder; sleep mode only where the platform has it."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "max_model_len": max_model_len,
        "enforce_eager": enforce_eager,
        "enable_sleep_mode": enable_sleep_mode and platform.sleep_mode,
        "enable_log_requests": False,
    }
    if platform.is_cpu:
        prepare_cpu_env(kv_cache_space_gib)
        if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0":
            kwargs["distributed_executor_backend"] = "uni"
    else:
        kwargs["gpu_memory_utilization"] = gpu_memory_utilization
    kwargs.update(extra_engine_args or {})
    return AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))
