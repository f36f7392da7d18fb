"""One base causal LM serving many LoRA adapters: the linears become MultiLoraLinear, generation runs mixed batches.

Adapters come and go through K device slots (`load_slot` / `evict_slot`); which adapter sits where is the adapter
store's business (experts/lora/store.py). `generate_batch` decodes greedily (or samples with one setting for the
whole batch) with left padding, each row on its own slot, and stops each row at its own max_tokens or stop string.
A step sink sees each unfinished row's tokens after every decoding step, which is what streaming is built on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from experts.llm.base import apply_stop
from experts.llm.lora_experts import ALL_LINEAR, LoraExpert
from experts.lora.slots import MultiLoraLinear, RowSlots

HostCopy = dict[str, tuple[torch.Tensor, torch.Tensor]]
StepSink = Callable[[int, list[int]], None]  # (row index, the row's new token ids so far), after every step


class AdapterMismatch(ValueError):
    """An adapter that does not fit the base model (unknown module, wrong shape, rank over the pool's)."""


@dataclass(frozen=True)
class BatchRow:
    """One request of a batch: its slot (0 = base model), prompt token ids, token limit and stop strings."""

    slot: int
    prompt_ids: list[int]
    max_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowResult:
    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int


class MultiLoraModel:
    """Wraps a loaded causal LM in place: every linear named in `targets` gets `slots` LoRA slots of rank `rank`."""

    def __init__(self, model: Any, tokenizer: Any, slots: int, rank: int,
                 targets: Sequence[str] = ALL_LINEAR) -> None:
        if slots < 1 or rank < 1:
            raise ValueError("a multi-LoRA model needs at least one slot of rank >= 1")
        self.model, self.tok, self.slots, self.rank = model, tokenizer, slots, rank
        self.rows = RowSlots()
        self.layers: dict[str, MultiLoraLinear] = {}
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.Linear) and name.rpartition(".")[2] in set(targets):
                layer = MultiLoraLinear(module, slots, rank, self.rows)
                owner, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(owner) if owner else model, leaf, layer)
                self.layers[name] = layer
        if not self.layers:
            raise ValueError(f"no linear layer of the model is named one of {list(targets)}")
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()  # one forward at a time: the row assignment is shared by every layer

    # ---- adapters ---------------------------------------------------------------------------------------------
    def check(self, expert: LoraExpert, label: str) -> None:
        """Raises AdapterMismatch naming `label` when the adapter cannot run on this base model."""
        for module, (a, b) in expert.modules.items():
            layer = self.layers.get(module)
            if layer is None:
                raise AdapterMismatch(f"{label}: adapter module {module!r} is not a LoRA-able linear of the base "
                                      f"model (known e.g. {sorted(self.layers)[:2]})")
            want_a, want_b = (a.shape[0], layer.base.in_features), (layer.base.out_features, a.shape[0])
            if a.ndim != 2 or b.ndim != 2 or tuple(a.shape) != want_a or tuple(b.shape) != want_b:
                raise AdapterMismatch(f"{label}: {module} has A {tuple(a.shape)} and B {tuple(b.shape)}, the base "
                                      f"needs A [r, {layer.base.in_features}] and B [{layer.base.out_features}, r]")
            if a.shape[0] > self.rank:
                raise AdapterMismatch(f"{label}: rank {a.shape[0]} is over the pool's slot rank {self.rank}")

    def host_copy(self, expert: LoraExpert, pin: bool = False) -> HostCopy:
        """The adapter's matrices as tensors in the model's dtype (pinned for fast copies when on a GPU)."""
        out: HostCopy = {}
        for module, (a, b) in expert.modules.items():
            ta, tb = torch.from_numpy(a).to(self.dtype), torch.from_numpy(b).to(self.dtype)
            out[module] = (ta.pin_memory(), tb.pin_memory()) if pin else (ta, tb)
        return out

    def load_slot(self, slot: int, weights: HostCopy, scaling: float) -> None:
        self._check_slot(slot)
        for name, layer in self.layers.items():
            if name in weights:
                layer.load(slot, *weights[name], scaling)
            else:
                layer.clear(slot)

    def read_slot(self, slot: int, modules: Sequence[str], rank: int) -> HostCopy:
        self._check_slot(slot)
        return {m: self.layers[m].read(slot, rank) for m in modules}

    def clear_slot(self, slot: int) -> None:
        self._check_slot(slot)
        for layer in self.layers.values():
            layer.clear(slot)

    def _check_slot(self, slot: int) -> None:
        if not 1 <= slot <= self.slots:
            raise ValueError(f"slot {slot} is outside 1..{self.slots}")

    # ---- generation ------------------------------------------------------------------------------------------
    def generate_batch(self, rows: Sequence[BatchRow], temperature: float = 0.0, top_p: float = 1.0,
                       seed: int | None = None, on_step: StepSink | None = None,
                       streamed: Sequence[int] = ()) -> list[RowResult]:
        """One `generate` over every row (left-padded), each on its slot; greedy unless temperature > 0.

        `on_step(i, ids)` is called after each step for the rows in `streamed` until they finish, with the row's
        new tokens cut at its limit and its end-of-sequence token (the stopping criterion runs every step)."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        if not rows:
            return []
        tok = self.tok
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(r.prompt_ids) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows],
                            device=self.device)
        limits = torch.tensor([r.max_tokens for r in rows], device=self.device)
        stops = [r.stop for r in rows]
        live = set(streamed) if on_step is not None else set()
        eos = tok.eos_token_id

        class _PerRow(StoppingCriteria):
            def __call__(self, seqs, scores, **kwargs):  # noqa: ANN001
                done = (seqs.shape[1] - width) >= limits
                for i, stop in enumerate(stops):
                    if stop and not done[i]:
                        done[i] = apply_stop(tok.decode(seqs[i, width:], skip_special_tokens=True), stop)[1]
                for i in sorted(live):
                    new = seqs[i, width:].tolist()[:rows[i].max_tokens]
                    if eos in new:
                        new = new[:new.index(eos)]
                        live.discard(i)
                    if done[i]:
                        live.discard(i)
                    assert on_step is not None
                    on_step(i, new)
                return done

        kwargs: dict[str, Any] = {"max_new_tokens": max(r.max_tokens for r in rows), "pad_token_id": pad}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            self.rows.set([r.slot for r in rows])
            try:
                out = self.model.generate(input_ids=ids, attention_mask=mask,
                                          stopping_criteria=StoppingCriteriaList([_PerRow()]), **kwargs)
            finally:
                self.rows.set([0])
        return [self._result(r, out[i, width:].tolist()) for i, r in enumerate(rows)]

    def _result(self, row: BatchRow, new_ids: list[int]) -> RowResult:
        eos = self.tok.eos_token_id
        ids = new_ids[:row.max_tokens]
        finish = "length"
        if eos in ids:
            ids, finish = ids[:ids.index(eos)], "stop"
        text = self.tok.decode(ids, skip_special_tokens=True)
        text, stopped = apply_stop(text, row.stop)
        return RowResult(text, ids, "stop" if stopped else finish, len(row.prompt_ids))
