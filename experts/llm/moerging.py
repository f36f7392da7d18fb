"""Token-level GLIDER MoErging (arXiv 2410.07172): one frozen base linear W₀ and N LoRA experts mixed per token.

Per module and token: s_local,i = LN(h)·LN(vᵢ)/√d with a gate vector vᵢ per expert (LayerNorm without affine, so
the score is a scaled correlation and the gate's length does not matter), logits = s_local + α·gᵢ with gᵢ the
request's global score, softmax, top-k renormalised weights w̃, and y = W₀h + Σᵢ w̃ᵢ·scalingᵢ·Bᵢ(Aᵢh).
The routing weights of each call can be captured (for the `coe.routing_trace` of a response).

Gate training (Phatgoose, which GLIDER's local router follows): each expert's gate vector vᵢ is trained alone on
its own task with the LoRA frozen, as a sigmoid gate y = W₀h + σ(vᵢ·h)·LoRAᵢ(h). `train_rows` selects the expert of
each batch row, so one batch trains the gates of several experts at once without mixing them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LoRAWeights:
    """One LoRA expert of a module: A [r, d_in], B [d_out, r], scaling (peft: lora_alpha / r)."""

    A: torch.Tensor
    B: torch.Tensor
    scaling: float


class MoErgingLinear(nn.Module):
    """W₀h + Σ top-k-renormalised w̃ᵢ LoRAᵢ(h), the weights from LayerNorm-ed gate similarity plus α × global."""

    scaling: torch.Tensor
    global_scores: torch.Tensor

    def __init__(self, base: nn.Linear, experts: Sequence[LoRAWeights], gates: torch.Tensor,
                 alpha: float = 0.0, top_k: int = 2, capture: bool = False) -> None:
        super().__init__()
        n = len(experts)
        if n == 0:
            raise ValueError("MoErgingLinear needs at least one LoRA expert")
        if gates.shape != (n, base.in_features):
            raise ValueError(f"gates must have shape [{n}, {base.in_features}], got {tuple(gates.shape)}")
        self.base = base
        self.lora_A = nn.Parameter(torch.stack([e.A for e in experts]), requires_grad=False)  # [N, r, d_in]
        self.lora_B = nn.Parameter(torch.stack([e.B for e in experts]), requires_grad=False)  # [N, d_out, r]
        self.register_buffer("scaling", torch.tensor([e.scaling for e in experts], dtype=base.weight.dtype))
        self.gates = nn.Parameter(gates.detach().clone())
        self.register_buffer("global_scores", torch.zeros(n, dtype=base.weight.dtype))
        self.alpha = float(alpha)
        self.top_k = min(int(top_k), n)
        self.capture = capture
        self.trace: list[torch.Tensor] = []
        self.fixed_weights: torch.Tensor | None = None  # [N]: bypass routing (base = zeros, one expert = one-hot)
        self.train_rows: torch.Tensor | None = None  # [batch]: the expert whose sigmoid gate each row trains

    @property
    def num_experts(self) -> int:
        return int(self.lora_A.shape[0])

    def set_global_scores(self, scores: torch.Tensor) -> None:
        """gᵢ of the current request (cosine of its task instruction with each expert's instruction)."""
        self.global_scores.copy_(torch.as_tensor(scores, dtype=self.global_scores.dtype))

    def routing_weights(self, h: torch.Tensor) -> torch.Tensor:
        """w̃ [..., N]: softmax(LN(h)·LN(v)ᵀ/√d + α·g), zero outside each token's top-k, renormalised."""
        if self.fixed_weights is not None:
            return self.fixed_weights.to(h.dtype).expand(*h.shape[:-1], self.num_experts)
        d = h.shape[-1]
        s_local = F.layer_norm(h, (d,)) @ F.layer_norm(self.gates, (d,)).T / math.sqrt(d)
        probs = torch.softmax(s_local + self.alpha * self.global_scores, dim=-1)
        top, idx = probs.topk(self.top_k, dim=-1)
        return torch.zeros_like(probs).scatter(-1, idx, top / top.sum(dim=-1, keepdim=True))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.train_rows is not None:
            return self.gate_training_forward(h, self.train_rows)
        w = self.routing_weights(h)
        if self.capture:
            self.trace.append(w.detach())
        low = torch.einsum("...d,nrd->...nr", h, self.lora_A)
        delta = torch.einsum("...nr,nor->...no", low, self.lora_B)  # every expert's B Aᵢ h: [..., N, d_out]
        mix = (w * self.scaling).unsqueeze(-1)
        return self.base(h) + (mix * delta).sum(dim=-2)


    def gate_training_forward(self, h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """W₀h + σ(v_e·h)·scaling_e·B_e A_e h with e = rows[b] for batch row b (h: [batch, tokens, d_in])."""
        gate = torch.sigmoid(torch.einsum("btd,bd->bt", h, self.gates[rows]))
        low = torch.einsum("btd,brd->btr", h, self.lora_A[rows])
        delta = torch.einsum("btr,bor->bto", low, self.lora_B[rows])
        return self.base(h) + (gate * self.scaling[rows][:, None]).unsqueeze(-1) * delta


def routing_trace(modules: dict[str, MoErgingLinear]) -> dict[str, list[float]]:
    """Mean routing weight per expert and module over every captured token (then the capture is cleared)."""
    out: dict[str, list[float]] = {}
    for name, m in modules.items():
        if m.trace:
            flat = torch.cat([t.reshape(-1, m.num_experts) for t in m.trace])
            out[name] = [round(float(x), 4) for x in flat.mean(dim=0)]
        m.trace.clear()
    return out
