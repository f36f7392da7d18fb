"""Training the MoErging gates (GLIDER's local router, as in Phatgoose) with every LoRA expert frozen.

Each batch holds rows of every expert's task; row b trains only its own expert's gate through the sigmoid gate
y = W₀h + σ(v_e·h)·LoRA_e(h) (MoErgingLinear.train_rows), so training all gates together equals training each
alone, at one backward pass per step. Gates start at zero (σ = ½) like Phatgoose's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from experts.llm.moerging_model import MoErgingModel
from experts.llm.tasks import Example
from experts.train.llm_lora import encode_examples


class GateTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=200, ge=1)
    rows_per_expert: int = Field(default=2, ge=1, description="batch rows of each expert's task per step")
    lr: float = Field(default=5e-3, gt=0)
    max_length: int = Field(default=112, ge=16)
    seed: int = 0


def train_gates(mm: MoErgingModel, tokenizer: Any, data: Sequence[Sequence[Example]], cfg: GateTrainConfig,
                on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Trains mm's gate vectors in place; data[i] is expert i's task data. Returns training stats."""
    if len(data) != len(mm.experts) or any(not d for d in data):
        raise ValueError(f"need training examples for each of the {len(mm.experts)} experts")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    for p in mm.model.parameters():
        p.requires_grad_(False)
    gates = [m.gates for m in mm.modules.values()]
    for g in gates:
        g.data.zero_()
        g.requires_grad_(True)
    opt = torch.optim.Adam(gates, lr=cfg.lr)
    rows = torch.tensor([i for i in range(len(data)) for _ in range(cfg.rows_per_expert)])
    losses: list[float] = []
    t0 = time.perf_counter()
    mm.model.train()
    try:
        for m in mm.modules.values():
            m.train_rows = rows
        for step in range(cfg.steps):
            batch = [rng.choice(data[i]) for i in rows.tolist()]
            loss = mm.model(**encode_examples(tokenizer, batch, cfg.max_length)).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if on_step:
                on_step(step, losses[-1])
    finally:
        for m in mm.modules.values():
            m.train_rows = None
        for g in gates:
            g.requires_grad_(False)
        mm.model.eval()
    return {"steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1),
            "loss_first10": round(float(np.mean(losses[:10])), 4),
            "loss_last10": round(float(np.mean(losses[-10:])), 4)}
