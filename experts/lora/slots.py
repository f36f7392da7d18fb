"""Punica-style mixed-adapter LoRA linear: one base linear, K device slots of LoRA weights, one slot per batch row.

y[b] = W₀·h[b] + scalingₛ · Bₛ(Aₛ h[b]) with s = rows[b]. Slot 0 is always empty (a row on the plain base model).
Every slot has the pool's largest rank; a smaller adapter is zero-padded, which leaves B·A unchanged. The rows
tensor is shared by every layer of a model (one `RowSlots` object), so one assignment routes the whole forward.
"""

from __future__ import annotations

import torch
from torch import nn


class RowSlots:
    """The slot of each batch row for the forward about to run (None: every row on slot 0, the base model)."""

    def __init__(self) -> None:
        self.rows: torch.Tensor | None = None
        self.uniform: int | None = 0  # the one slot every row uses, when they agree (a plain matmul then)

    def set(self, rows: list[int]) -> None:
        self.rows = torch.tensor(rows, dtype=torch.long)
        self.uniform = rows[0] if len(set(rows)) == 1 else None


class MultiLoraLinear(nn.Module):
    """A base linear plus slot tables A [K+1, r, d_in], B [K+1, d_out, r] and scaling [K+1]."""

    def __init__(self, base: nn.Linear, slots: int, rank: int, rows: RowSlots) -> None:
        super().__init__()
        self.base = base
        w = base.weight
        self.register_buffer("lora_A", torch.zeros(slots + 1, rank, base.in_features, dtype=w.dtype, device=w.device))
        self.register_buffer("lora_B", torch.zeros(slots + 1, base.out_features, rank, dtype=w.dtype, device=w.device))
        self.register_buffer("scaling", torch.zeros(slots + 1, dtype=w.dtype, device=w.device))
        self.slot_rows = rows

    lora_A: torch.Tensor
    lora_B: torch.Tensor
    scaling: torch.Tensor

    def load(self, slot: int, a: torch.Tensor, b: torch.Tensor, scaling: float) -> None:
        """Writes one adapter's matrices into a slot (rank zero-padded)."""
        r = a.shape[0]
        if r < self.lora_A.shape[1]:  # a full-rank adapter overwrites the whole slot: no need to clear it
            self.lora_A[slot].zero_()
            self.lora_B[slot].zero_()
        self.lora_A[slot, :r].copy_(a)
        self.lora_B[slot, :, :r].copy_(b)
        self.scaling[slot] = scaling

    def read(self, slot: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of a slot's matrices at the adapter's own rank (to keep a host copy on eviction)."""
        return self.lora_A[slot, :rank].clone(), self.lora_B[slot, :, :rank].clone()

    def clear(self, slot: int) -> None:
        self.lora_A[slot].zero_()
        self.lora_B[slot].zero_()
        self.scaling[slot] = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.base(h)
        uniform, rows = self.slot_rows.uniform, self.slot_rows.rows
        if uniform == 0 or rows is None:
            return y
        if uniform is not None:  # one adapter for the whole batch: the same two matmuls peft runs
            return y + (h @ self.lora_A[uniform].T) @ self.lora_B[uniform].T * self.scaling[uniform]
        # Mixed rows: one batched matmul pair over each row's gathered slot (Punica's BGMV); a row's result
        # equals its single-adapter result up to float rounding (greedy tokens match; tests/experts/lora).
        rows = rows.to(h.device)
        low = torch.bmm(h, self.lora_A[rows].transpose(1, 2))
        delta = torch.bmm(low, self.lora_B[rows].transpose(1, 2))
        return y + delta * self.scaling[rows][:, None, None]
