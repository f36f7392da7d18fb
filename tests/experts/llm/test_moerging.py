"""Token-level MoErging: one expert equals a plain peft LoRA forward; α moves routing from gates to global scores."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from experts.llm.moerging import LoRAWeights, MoErgingLinear, routing_trace


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def lora_from_peft(module: Any, adapter: str = "default") -> tuple[nn.Linear, LoRAWeights]:
    """The base linear and one adapter's LoRA weights out of a peft `LoraLayer` (the tests' oracle)."""
    base = module.get_base_layer()
    a = module.lora_A[adapter].weight.detach()
    b = module.lora_B[adapter].weight.detach()
    return base, LoRAWeights(a, b, float(module.scaling[adapter]))


def test_one_expert_equals_peft_lora_forward():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(Tiny(), LoraConfig(r=4, lora_alpha=8, target_modules=["proj"], lora_dropout=0.0))
    layer = model.base_model.model.proj
    nn.init.normal_(layer.lora_B["default"].weight)  # peft starts B at zero: make the adapter matter
    base, lora = lora_from_peft(layer)
    assert lora.scaling == 2.0
    mixed = MoErgingLinear(base, [lora], gates=torch.randn(1, 8), alpha=0.0, top_k=2, capture=True)
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        expected = model(x)
        got = mixed(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, base(x), atol=1e-3)  # the LoRA delta is really there
    assert torch.equal(mixed.trace[0], torch.ones(3, 5, 1))  # the gate weight of the one expert is 1


def experts_and_layer(alpha: float, top_k: int) -> MoErgingLinear:
    d = 4
    base = nn.Linear(d, d, bias=False)
    nn.init.zeros_(base.weight)
    eye = torch.eye(d)
    # Expert i adds (i+1)·h: distinct, easy to read off the output.
    experts = [LoRAWeights(eye, eye * (i + 1), 1.0) for i in range(3)]
    gates = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    layer = MoErgingLinear(base, experts, gates, alpha=alpha, top_k=top_k, capture=True)
    layer.set_global_scores(torch.tensor([0.0, 0.0, 1.0]))
    return layer


def test_alpha_zero_routes_by_gates_and_large_alpha_by_global_score():
    h = torch.tensor([[5.0, 0.0, 0.0, 0.0]])  # aligned with expert 0's gate
    local = experts_and_layer(alpha=0.0, top_k=1)
    with torch.no_grad():
        assert torch.allclose(local(h), 1 * h)  # expert 0 alone
        glob = experts_and_layer(alpha=100.0, top_k=1)
        assert torch.allclose(glob(h), 3 * h)  # expert 2, which has the global score
    assert torch.equal(local.trace[0], torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.equal(glob.trace[0], torch.tensor([[0.0, 0.0, 1.0]]))


def test_top2_weights_match_hand_computation():
    layer = experts_and_layer(alpha=0.5, top_k=2)
    h = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    # LN(h) = (√3, -1/√3, -1/√3, -1/√3) (biased variance, eps 1e-5 aside); LN(gate i) is the same pattern at i.
    ln = lambda i: torch.tensor([math.sqrt(3) if j == i else -1 / math.sqrt(3) for j in range(4)])  # noqa: E731
    s = torch.stack([ln(0) @ ln(i) / 2 for i in range(3)]) + 0.5 * torch.tensor([0.0, 0.0, 1.0])
    p = torch.softmax(s, dim=0)  # s = [2, -2/3, -2/3 + 0.5]: top-2 = experts 0 and 2
    w0, w2 = p[0] / (p[0] + p[2]), p[2] / (p[0] + p[2])
    with torch.no_grad():
        out = layer(h)
    assert torch.allclose(layer.trace[0], torch.tensor([[w0, 0.0, w2]]), atol=1e-4)
    assert torch.allclose(out, (w0 * 1 + w2 * 3) * h, atol=1e-3)
    assert routing_trace({"proj": layer}) == {"proj": [round(float(w0), 4), 0.0, round(float(w2), 4)]}
    assert layer.trace == []


def test_gate_shape_is_checked():
    with pytest.raises(ValueError, match=r"gates must have shape \[1, 4\]"):
        MoErgingLinear(nn.Linear(4, 4), [LoRAWeights(torch.eye(4), torch.eye(4), 1.0)], torch.zeros(2, 4))
