"""The transformers backend: runs a Hugging Face causal LM on CPU or GPU, streaming token deltas."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from experts.llm.base import (
    BackendError,
    BackendInfo,
    BackendOptions,
    Chunk,
    GenerationRequest,
    Tier,
    apply_stop,
    completion_prompt,
)
from experts.memory import torch_moves as tm

log = logging.getLogger(__name__)

# Building a module under `torch.device("meta")` changes the default device for the whole process, so two
# experts materialising at once in worker threads would create each other's tensors on meta: one at a time.
_MATERIALISE_LOCK = threading.Lock()

_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32", "auto": "auto"}


def weights_nbytes(model_path: str) -> int:
    """Bytes of the safetensors files of a local folder (0 when not a local folder)."""
    folder = Path(model_path)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) if folder.is_dir() else 0


class _Cancelled(Exception):
    pass


class TransformersBackend:
    """One expert on plain transformers; generation runs in a worker thread, one request at a time."""

    def __init__(self, name: str, model_path: str, options: BackendOptions = BackendOptions()) -> None:
        self.name = name
        self.model_path = model_path
        self.dtype = _DTYPES[options.dtype]
        self.chat_template = options.chat_template
        self.device = options.device
        self.context_length = options.context_length
        self.info = BackendInfo(name=name, backend="transformers", model=model_path,
                                nbytes=weights_nbytes(model_path))
        self._model: Any = None
        self._tokenizer: Any = None
        self._host_state: dict[str, Any] | None = None
        self._config: Any = None
        self._extra: dict[str, Any] | None = None  # non-persistent buffers: what a reload from the files lacks
        self._lock = asyncio.Lock()
        self._tier: Tier = "disk"
        # Resolve transformers' lazy attributes here, once: tier moves run in worker threads, and concurrent
        # first imports of the same lazy module race (seen: "cannot import name 'AutoModelForCausalLM'").
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    # ---- lifecycle and tiers -------------------------------------------------
    @property
    def tier(self) -> Tier:
        return self._tier

    async def start(self) -> None:
        await self.to("device")

    async def to(self, tier: Tier) -> None:
        """device: runnable module; host: its tensors kept in RAM, module released; disk: nothing in RAM."""
        if tier == self._tier:
            return
        async with self._lock:
            await asyncio.to_thread(self._move, tier)

    def _move(self, tier: Tier) -> None:
        with _MATERIALISE_LOCK:
            self._move_locked(tier)

    def _move_locked(self, tier: Tier) -> None:
        if tier == "device":
            self._materialise()
        elif tier == "host":
            if self._model is None:
                self._materialise()
            self._host_state = tm.capture(self._model, pin=self.device.startswith("cuda"))
            self._model = None
        else:
            self._model = None
            self._host_state = None
        self._tier = tier

    def _materialise(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        if self._host_state is not None and self._config is not None:
            config = self._config
            model = tm.restore(tm.meta_module(lambda: AutoModelForCausalLM.from_config(config, dtype=dtype)),
                               self._host_state)
            self._host_state = None
        else:
            model = self._from_files(dtype) or AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
            self._extra = tm.non_persistent_buffers(model)
        self._config = model.config
        self._model = tm.to_device(model, self.device).eval()
        unique = {p.data_ptr(): p for p in self._model.parameters()}  # tied weights share storage: count once
        self.info.params = sum(p.numel() for p in unique.values())
        self.info.nbytes = sum(p.numel() * p.element_size() for p in unique.values())

    def _from_files(self, dtype: Any) -> Any:
        """A reload from disk once the config is known: the files read straight into host memory
        (experts/memory/safetensors_read.py) instead of transformers' loader; None when that cannot apply."""
        files = sorted(Path(self.model_path).glob("*.safetensors"))
        if self._config is None or self._extra is None or not files:
            return None
        from transformers import AutoModelForCausalLM

        config = self._config
        try:
            model = tm.load_from_disk(lambda: AutoModelForCausalLM.from_config(config, dtype=dtype), files,
                                      self._extra)
        except ValueError as err:  # the files' names differ from the module's: transformers knows the mapping
            log.info("reload through transformers", extra={"expert": self.name, "why": str(err)})
            return None
        if dtype != "auto":  # weights stored in another dtype: cast them, never the kept buffers (rotary
            for p in model.parameters():  # tables stay float32, as transformers' loader leaves them)
                if p.is_floating_point() and p.dtype != dtype:
                    p.data = p.data.to(dtype)
        return model

    def _require_model(self) -> Any:
        if self._model is None:
            raise BackendError(f"expert {self.name!r} is not device-resident (tier={self._tier})")
        return self._model

    # ---- prompts -------------------------------------------------------------
    def render_prompt(self, request: GenerationRequest) -> str:
        """The chat template for instruct models, a plain completion prompt for base models."""
        if self.chat_template and getattr(self._tokenizer, "chat_template", None):
            msgs = [{"role": m.role, "content": m.content} for m in request.messages]
            return str(self._tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        return completion_prompt(request.messages)

    # ---- generation ----------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        async with self._lock:
            self._require_model()
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            cancel = threading.Event()
            loop = asyncio.get_running_loop()
            worker = loop.run_in_executor(None, self._generate_blocking, request, queue, loop, cancel)
            try:
                while True:
                    kind, value = await queue.get()
                    if kind == "text":
                        yield Chunk(text=value)
                    elif kind == "done":
                        yield value
                        break
                    else:
                        raise BackendError(f"expert {self.name!r} failed: {value}")
            finally:
                cancel.set()
                await asyncio.shield(worker)

    def _generate_blocking(self, request: GenerationRequest, queue: asyncio.Queue, loop, cancel) -> None:
        def emit(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        try:
            emit("done", self._run_generation(request, cancel, lambda t: emit("text", t)))
        except _Cancelled:
            emit("done", Chunk(text="", finish_reason="stop"))
        except Exception as err:  # surfaced to the caller as BackendError
            log.exception("generation failed", extra={"expert": self.name})
            emit("error", f"{type(err).__name__}: {err}")

    def _run_generation(self, request: GenerationRequest, cancel: threading.Event, on_text) -> Chunk:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        model = self._require_model()
        tok = self._tokenizer
        prompt = self.render_prompt(request)
        enc = tok(prompt, return_tensors="pt", add_special_tokens=not self.chat_template)
        input_ids = enc["input_ids"][:, -(self.context_length - request.max_tokens):].to(self.device)
        prompt_len = int(input_ids.shape[1])
        stream = _StopStream(tok, prompt_len, request.stop, on_text)

        class _Stop(StoppingCriteria):
            def __call__(self, ids, scores, **kwargs):  # noqa: ANN001
                stream.feed(ids[0])
                flag = cancel.is_set() or stream.stopped
                return torch.full((ids.shape[0],), flag, dtype=torch.bool, device=ids.device)

        kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens, "pad_token_id": tok.eos_token_id}
        if request.samples:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=request.top_p)
            if request.seed is not None:
                torch.manual_seed(request.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                 stopping_criteria=StoppingCriteriaList([_Stop()]), **kwargs)
        stream.feed(out[0], final=True)
        completion = int(out.shape[1]) - prompt_len
        if cancel.is_set() and not stream.stopped:
            raise _Cancelled
        finish: Literal["stop", "length"] = "stop" if (stream.stopped or completion < request.max_tokens) else "length"
        log.debug("generated", extra={"expert": self.name, "tokens": completion, "s": time.perf_counter() - t0})
        return Chunk(text="", finish_reason=finish, prompt_tokens=prompt_len, completion_tokens=completion)

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        async with self._lock:
            return await asyncio.to_thread(self._loglikelihoods_blocking, prompt, continuations)

    def _loglikelihoods_blocking(self, prompt: str, continuations: list[str]) -> list[float]:
        import torch

        model = self._require_model()
        tok = self._tokenizer
        prompt_ids = tok(prompt, add_special_tokens=True)["input_ids"]
        fulls = [tok(prompt + cont, add_special_tokens=True)["input_ids"] for cont in continuations]
        with torch.inference_mode():
            if all(len(f) == len(prompt_ids) + 1 and f[:-1] == prompt_ids for f in fulls):
                # Single-token continuations (answer letters): one forward pass scores them all.
                logits = model(input_ids=torch.tensor([prompt_ids], device=self.device)).logits[0, -1].float()
                logp = torch.log_softmax(logits, dim=-1)
                return [float(logp[f[-1]]) for f in fulls]
            return [self._sequence_tail_logprob(model, full, max(1, len(full) - len(prompt_ids))) for full in fulls]

    def _sequence_tail_logprob(self, model: Any, ids_list: list[int], n_tail: int) -> float:
        import torch

        ids = torch.tensor([ids_list], device=self.device)
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        target = ids[0, 1:]
        return float(logp[torch.arange(len(target)), target][-n_tail:].sum())


class _StopStream:
    """Turns generated ids into text deltas, holding back text that may be the start of a stop string."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: tuple[str, ...], on_text) -> None:
        self.tok = tokenizer
        self.prompt_len = prompt_len
        self.stops = tuple(s for s in stops if s)
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.on_text = on_text
        self.sent = 0
        self.stopped = False

    def feed(self, ids, final: bool = False) -> None:
        if self.stopped:
            return
        text = self.tok.decode(ids[self.prompt_len:], skip_special_tokens=True)
        if text.endswith("\ufffd") and not final:  # an incomplete multi-byte character
            return
        cut, found = apply_stop(text, self.stops)
        if found:
            self.stopped = True
            limit = len(cut)
        else:
            limit = len(text) if final else max(self.sent, len(text) - self.hold)
        if limit > self.sent:
            self.on_text(cut[self.sent:limit])
            self.sent = limit
