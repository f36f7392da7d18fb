"""LoRA experts as LLM backends: one `LoraGroup` holds a base model once, each expert is a view on one adapter.

The group loads the base, checks every adapter against it at start-up (errors name the expert), puts the
adapters through the tiers (experts/lora/store.py) and batches their requests together (experts/lora/batcher.py).
A base that is itself a configured expert is served by the same group on slot 0, so it is loaded once.
Streaming yields text as the batch decodes it (a step sink per row, experts/lora/batcher.py), holding back a tail
that could still become a stop string or an unfinished character, so the streamed text is the non-streamed text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from experts.llm.base import BackendError, BackendInfo, Chunk, GenerationRequest, Tier, apply_stop, completion_prompt
from experts.lora.artifact import load_any_expert
from experts.lora.batcher import MixedBatcher, Sampling
from experts.lora.runtime import BatchRow, MultiLoraModel
from experts.lora.store import AdapterStore
from experts.memory.defaults import ACQUIRE_TIMEOUT_S

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraGroupOptions:
    """How one base model serves its adapters (vLLM's names: max_loras slots, max_cpu_loras host copies)."""

    max_loras: int = 8
    max_cpu_loras: int | None = None
    max_lora_rank: int | None = None  # None: the largest rank among the adapters
    max_batch: int = 16
    batch_window_s: float = 0.005
    acquire_timeout_s: float = ACQUIRE_TIMEOUT_S
    policy: str = "lru"


class LoraGroup:
    """One base model and the adapters of the experts that name it."""

    def __init__(self, base_path: str, adapters: dict[str, str | Path], *, dtype: str = "float32",
                 chat_template: bool = True, device: str = "cpu",
                 options: LoraGroupOptions = LoraGroupOptions()) -> None:
        self.base_path, self.adapter_paths = base_path, {n: Path(p) for n, p in adapters.items()}
        self.dtype, self.chat_template, self.device, self.options = dtype, chat_template, device, options
        self.runtime: MultiLoraModel | None = None
        self.store: AdapterStore | None = None
        self.batcher: MixedBatcher | None = None
        self.tokenizer: Any = None

    def start(self) -> None:
        """Load the base, check every adapter against it (a clear error naming the expert), set up the tiers."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        experts = {}
        for name, path in self.adapter_paths.items():
            if not path.is_dir():
                raise BackendError(f"LoRA expert {name!r}: adapter folder {path} not found")
            try:
                experts[name] = load_any_expert(path)
            except Exception as err:
                raise BackendError(f"LoRA expert {name!r}: {err}") from None
        rank = self.options.max_lora_rank or max(
            (next(iter(e.modules.values()))[0].shape[0] for e in experts.values()), default=1)
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.base_path, dtype=getattr(torch, self.dtype))
        model = model.to(self.device).eval()  # type: ignore[arg-type]
        slots = max(1, min(self.options.max_loras, len(experts) or 1))
        self.runtime = MultiLoraModel(model, self.tokenizer, slots=slots, rank=rank)
        for name, expert in experts.items():
            try:
                self.runtime.check(expert, f"LoRA expert {name!r}")
            except ValueError as err:
                raise BackendError(str(err)) from None
        self.store = AdapterStore(self.runtime, host_adapters=self.options.max_cpu_loras,
                                  acquire_timeout_s=self.options.acquire_timeout_s, policy=self.options.policy)
        for name, path in self.adapter_paths.items():
            self.store.register(name, path)
        self.batcher = MixedBatcher(self.runtime, self.options.max_batch, self.options.batch_window_s)
        log.info("LoRA group ready", extra={"base": self.base_path, "adapters": len(experts), "slots": slots})

    async def open(self) -> None:
        """start() off the event loop, then every adapter as far up the tiers as the budgets allow."""
        await asyncio.to_thread(self.start)
        assert self.store is not None
        await self.store.warm()

    def render(self, request: GenerationRequest) -> list[int]:
        tok = self.tokenizer
        if self.chat_template and getattr(tok, "chat_template", None):
            msgs = [{"role": m.role, "content": m.content} for m in request.messages]
            text = str(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(completion_prompt(request.messages), add_special_tokens=True)["input_ids"])


class LoraExpertBackend:
    """An expert served by a LoraGroup: its adapter (None: the plain base on slot 0)."""

    def __init__(self, group: LoraGroup, name: str, adapter: str | None, base_label: str) -> None:
        self.group, self.name, self.adapter = group, name, adapter
        self.info = BackendInfo(name=name, backend="transformers+lora", model=group.base_path,
                                extra={"base": base_label, **({"adapter": str(group.adapter_paths[adapter])}
                                                               if adapter else {})})

    async def start(self) -> None:
        if self.group.runtime is None:
            raise BackendError(f"expert {self.name!r}: its LoRA group has not been started")
        if self.adapter and self.group.store is not None:
            self.info.nbytes = self.group.store.slot_bytes

    @property
    def tier(self) -> Tier:
        store = self.group.store
        if self.adapter is None or store is None:
            return "device"
        return store.handles[self.adapter].tier

    async def to(self, tier: Tier) -> None:
        store = self.group.store
        if self.adapter is None or store is None:
            if tier != "device":
                raise BackendError(f"expert {self.name!r} is the base of LoRA experts and stays on the device")
            return
        if tier == "device":
            async with store.acquire(self.adapter):
                return
        await store.manager.demote(self.adapter, tier)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        group = self.group
        if group.batcher is None or group.store is None:
            raise BackendError(f"expert {self.name!r} is not started")
        ids = group.render(request)
        sampling = Sampling(request.temperature if request.samples else 0.0, request.top_p, request.seed)
        if self.adapter is None:
            async for chunk in self._decode(BatchRow(0, ids, request.max_tokens, request.stop), sampling):
                yield chunk
            return
        async with group.store.acquire(self.adapter) as slot:
            async for chunk in self._decode(BatchRow(slot, ids, request.max_tokens, request.stop), sampling):
                yield chunk

    async def _decode(self, row: BatchRow, sampling: Sampling) -> AsyncIterator[Chunk]:
        """Deltas of the row's text after each decoding step, then the rest of the final text and the usage."""
        assert self.group.batcher is not None
        steps: asyncio.Queue[list[int]] = asyncio.Queue()
        job = asyncio.ensure_future(self.group.batcher.submit(row, sampling, sink=steps.put_nowait))
        sent = ""
        try:
            while not job.done():
                step = asyncio.ensure_future(steps.get())
                await asyncio.wait({job, step}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    continue
                text = streamable(self.group.tokenizer.decode(step.result(), skip_special_tokens=True), row.stop)
                if len(text) > len(sent) and text.startswith(sent):
                    yield Chunk(text=text[len(sent):])
                    sent = text
            result = job.result()
        finally:
            if not job.done():  # the caller went away: the slot's pin (held above) lasts until the batch lets go
                job.cancel()
                await asyncio.wait({job})
        finish: Literal["stop", "length"] = "stop" if result.finish_reason == "stop" else "length"
        if not result.text.startswith(sent):  # cannot happen with the hold-back; say so rather than garble
            raise BackendError(f"expert {self.name!r}: streamed text {sent!r} is not a prefix of the result")
        if len(result.text) > len(sent):
            yield Chunk(text=result.text[len(sent):])
        yield Chunk(text="", finish_reason=finish, prompt_tokens=result.prompt_tokens,
                    completion_tokens=len(result.token_ids))

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        raise BackendError(f"expert {self.name!r}: log-likelihood scoring is not served for LoRA experts")


def streamable(text: str, stop: tuple[str, ...]) -> str:
    """The part of a partial completion that is final: cut at a stop string; else without a trailing replacement
    character (half a UTF-8 sequence), trailing whitespace (decoding may fold it into the next token, " ." → ".")
    and a tail that is the start of a stop string."""
    text, stopped = apply_stop(text, stop)
    if stopped:
        return text
    text = text.rstrip("\ufffd").rstrip()
    hold = max((n for s in stop for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
    return text[:len(text) - hold].rstrip()
