"""The vLLM backend: one expert on vLLM's async engine, streaming deltas; tiers are vLLM sleep levels.

LoRA experts share their base's engine (experts/lora/vllm_group.py): `stream(request, lora_request)` is the one
generation path, with or without an adapter.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from experts.llm.base import BackendError, BackendInfo, Chunk, GenerationRequest, Tier, completion_prompt
from experts.llm.safetensors_stats import safetensors_stats
from experts.llm.vllm_engine import Platform, build_engine, detect_platform

log = logging.getLogger(__name__)

_SLEEP_LEVEL: dict[Tier, int] = {"host": 1, "disk": 2}


class TierUnsupportedError(BackendError):
    """The backend cannot move its weights to the asked tier here (vLLM's CPU build has no sleep mode)."""


class VLLMBackend:
    """One expert on vLLM (AsyncLLM): device = awake, host = sleep(level=1), disk = sleep(level=2)."""

    def __init__(
        self,
        name: str,
        model_path: str,
        *,
        dtype: str = "bfloat16",
        chat_template: bool = True,
        max_model_len: int = 2048,
        gpu_memory_utilization: float = 0.85,
        enforce_eager: bool = False,
        kv_cache_space_gib: int = 1,
        enable_sleep_mode: bool = True,
        extra_engine_args: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.model_path = model_path
        self.chat_template = chat_template
        self._engine_kwargs: dict[str, Any] = {
            "dtype": dtype, "max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization,
            "enforce_eager": enforce_eager, "kv_cache_space_gib": kv_cache_space_gib,
            "enable_sleep_mode": enable_sleep_mode, "extra_engine_args": dict(extra_engine_args or {}),
        }
        params, nbytes = safetensors_stats(model_path)
        self.info = BackendInfo(name=name, backend="vllm", model=model_path, params=params, nbytes=nbytes)
        self._engine: Any = None
        self._tokenizer: Any = None
        self._platform: Platform | None = None
        self._sleepable = False
        self._tier: Tier = "disk"
        self._lock = asyncio.Lock()

    def add_engine_args(self, args: dict[str, Any]) -> None:
        """More engine arguments (a LoRA group's enable_lora, max_loras, ...); only before the engine starts."""
        if self._engine is not None:
            raise BackendError(f"expert {self.name!r}: engine arguments are fixed once the engine has started")
        self._engine_kwargs["extra_engine_args"].update(args)

    # ---- lifecycle and tiers -------------------------------------------------
    @property
    def tier(self) -> Tier:
        return self._tier

    @property
    def engine(self) -> Any:
        """The AsyncLLM (None before start); for tests and metrics."""
        return self._engine

    async def start(self) -> None:
        async with self._lock:
            if self._engine is None:
                self._start_engine()

    def _start_engine(self) -> None:
        platform = detect_platform()
        want_sleep = bool(self._engine_kwargs["enable_sleep_mode"])
        if want_sleep and not platform.sleep_mode:
            log.warning("vLLM sleep mode is not available on %s: expert %r stays device-resident",
                        platform.device, self.name, extra={"expert": self.name, "device": platform.device})
        self._engine = build_engine(self.model_path, platform=platform, **self._engine_kwargs)
        self._tokenizer = self._engine.get_tokenizer()
        self._platform = platform
        self._sleepable = want_sleep and platform.sleep_mode
        self._tier = "device"
        self.info.extra.update(device=platform.device, sleep_mode=str(self._sleepable).lower(),
                               max_model_len=str(self._engine_kwargs["max_model_len"]))

    async def shutdown(self) -> None:
        """Stop the engine and its processes; the backend can be started again."""
        async with self._lock:
            if self._engine is not None:
                self._engine.shutdown()
            self._engine = None
            self._tier = "disk"

    async def to(self, tier: Tier) -> None:
        """Wake or put the engine to sleep; on builds without sleep mode only "device" is accepted."""
        if tier == self._tier:
            return
        async with self._lock:
            if self._engine is None:
                self._start_engine()
                if tier == "device":
                    return
            if not self._sleepable:
                raise self._unsupported(tier)
            if tier == "device":
                await self._wake()
            else:
                if self._tier != "device":  # vLLM sleeps only from awake; switch levels through device
                    await self._wake()
                await self._engine.sleep(level=_SLEEP_LEVEL[tier], mode="wait")
            self._tier = tier

    def _unsupported(self, tier: Tier) -> TierUnsupportedError:
        device = self._platform.device if self._platform else "?"
        return TierUnsupportedError(
            f"expert {self.name!r}: vLLM sleep mode is unavailable on {device} (or disabled), "
            f"so its weights cannot move to {tier!r}; it stays on 'device'"
        )

    async def _wake(self) -> None:
        if self._tier == "disk":
            # Level 2 discarded the weights: allocate them, reload them from the folder, then the KV cache.
            await self._engine.wake_up(tags=["weights"])
            await self._engine.collective_rpc("reload_weights")
            await self._engine.wake_up(tags=["kv_cache"])
        elif self._tier == "host":
            await self._engine.wake_up()
        self._tier = "device"

    def _require_engine(self) -> Any:
        if self._engine is None or self._tier != "device":
            raise BackendError(f"expert {self.name!r} is not device-resident (tier={self._tier})")
        return self._engine

    # ---- prompts -------------------------------------------------------------
    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """Token ids of the chat-templated prompt (a plain completion prompt for base models)."""
        tok = self._tokenizer
        if self.chat_template and getattr(tok, "chat_template", None):
            msgs = [{"role": m.role, "content": m.content} for m in request.messages]
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            return list(tok.encode(text, add_special_tokens=False))
        return list(tok.encode(completion_prompt(request.messages), add_special_tokens=True))

    # ---- generation ----------------------------------------------------------
    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream text deltas; leaving the loop early (or cancelling) aborts the request in the engine."""
        return self.stream(request)

    async def stream(self, request: GenerationRequest, lora_request: Any = None,
                     label: str | None = None) -> AsyncIterator[Chunk]:
        """`generate`, with an optional `vllm.lora.request.LoRARequest` (a LoRA expert on this engine); `label`
        names the expert in errors and request ids."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        engine = self._require_engine()
        ids = self.prompt_ids(request)
        params = SamplingParams(
            max_tokens=request.max_tokens, temperature=request.temperature, top_p=request.top_p,
            stop=list(request.stop) or None, seed=request.seed, output_kind=RequestOutputKind.DELTA,
        )
        name = label or self.name
        request_id = f"{name}-{uuid.uuid4().hex}"
        extra = {"lora_request": lora_request} if lora_request is not None else {}
        stream = engine.generate({"prompt_token_ids": ids}, params, request_id, **extra)
        finished, completion_tokens = False, 0
        try:
            async for out in stream:
                seq = out.outputs[0]
                completion_tokens += len(seq.token_ids)
                finished = out.finished
                if finished:
                    reason: Literal["stop", "length"] = "length" if seq.finish_reason == "length" else "stop"
                    yield Chunk(text=seq.text, finish_reason=reason, prompt_tokens=len(ids),
                                completion_tokens=completion_tokens)
                elif seq.text:
                    yield Chunk(text=seq.text)
        except (BackendError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as err:
            raise BackendError(f"expert {name!r} failed: {type(err).__name__}: {err}") from err
        finally:
            if not finished:
                await engine.abort(request_id)
            await stream.aclose()

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after the raw prompt (prompt_logprobs)."""
        engine = self._require_engine()
        context = list(self._tokenizer.encode(prompt, add_special_tokens=True))
        scores = await asyncio.gather(*(self._score(engine, context, c) for c in continuations))
        return list(scores)

    async def _score(self, engine: Any, context: list[int], continuation: str) -> float:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        target = list(self._tokenizer.encode(continuation, add_special_tokens=False))
        if not target:
            return 0.0
        ids = context + target
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        final = None
        request_id = f"{self.name}-ll-{uuid.uuid4().hex}"
        async for out in engine.generate({"prompt_token_ids": ids}, params, request_id):
            final = out
        if final is None or final.prompt_logprobs is None:
            raise BackendError(f"expert {self.name!r}: the engine returned no prompt logprobs")
        positions = range(len(context), len(ids))
        return float(sum(final.prompt_logprobs[i][ids[i]].logprob for i in positions))
