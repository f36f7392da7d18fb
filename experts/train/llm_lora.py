"""Training LoRA experts of one causal LM: peft LoRA on every linear layer, on (prompt, target) pairs of one task.

The loss covers the target tokens only (the prompt is context), so an expert learns its task's answers, not
its inputs. The weights are saved in the format serving reads (experts/llm/lora_experts.py): no peft there.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from experts.embed.adapters import LoraSpec, save_adapter
from experts.llm.lora_experts import ALL_LINEAR, KIND, PEFT_PREFIX
from experts.llm.tasks import Example

log = logging.getLogger(__name__)



def default_lora() -> LoraSpec:
    """r=4 on all seven linear layers keeps a SmolLM2-135M expert at 2.4 MB in float16 (committable)."""
    return LoraSpec(r=4, alpha=16, dropout=0.05, target_modules=list(ALL_LINEAR))


class LoraExpertTrainConfig(BaseModel):
    """How one LoRA expert is trained (causal-LM loss on the target tokens, AdamW, constant learning rate)."""

    model_config = ConfigDict(extra="forbid")

    lora: LoraSpec = Field(default_factory=default_lora)
    # 150 steps at 2e-3 (the committed experts): 60 steps at 1e-3 ended at training losses 2.7-3.0, these at
    # 1.7-2.7; README "Token-level GLIDER" has what each gave.
    steps: int = Field(default=150, ge=1)
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    max_length: int = Field(default=112, ge=16, description="tokens per example (prompt + target), cut from the left")
    seed: int = 0


def load_causal_lm(model_path: str) -> tuple[Any, Any]:
    """The model in float32 (training and exact scoring on CPU) and its tokenizer (right padding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    return model.eval(), tok


def encode_examples(tokenizer: Any, batch: Sequence[Example], max_length: int) -> dict[str, Any]:
    """input_ids, attention_mask and labels (-100 on the prompt and padding) for a batch of examples."""
    import torch

    rows, labels = [], []
    for ex in batch:
        p = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(ex.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (p + t)[-max_length:]
        n_target = min(len(t), len(ids))
        rows.append(ids)
        labels.append([-100] * (len(ids) - n_target) + ids[len(ids) - n_target:])
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels]),
    }


def train_lora_expert(model: Any, tokenizer: Any, data: Sequence[Example], cfg: LoraExpertTrainConfig,
                      on_step: Callable[[int, float], None] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Train one adapter on `data`; returns its weights per module and training stats. `model` is left unchanged
    (the adapter is unloaded afterwards), so one loaded base model trains every expert in turn."""
    import torch
    from peft import LoraConfig, get_peft_model

    if not data:
        raise ValueError("no training examples")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    spec = cfg.lora
    peft_model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                                  target_modules=list(spec.target_modules), bias="none"))
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    order: list[int] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        if len(order) < cfg.batch_size:
            order += rng.sample(range(len(data)), len(data))
        batch = [data[order.pop()] for _ in range(min(cfg.batch_size, len(data)))]
        loss = peft_model(**encode_examples(tokenizer, batch, cfg.max_length)).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
    weights = lora_state(peft_model)
    peft_model.unload()  # back to the plain model for the next expert
    stats = {"steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1), "examples": len(data),
             "loss_first10": round(float(np.mean(losses[:10])), 4),
             "loss_last10": round(float(np.mean(losses[-10:])), 4)}
    return weights, stats


def lora_state(peft_model: Any) -> dict[str, np.ndarray]:
    """{"<module>.lora_A": [r, d_in], "<module>.lora_B": [d_out, r]} keyed by the plain model's module names."""
    from peft.tuners.lora import LoraLayer

    out: dict[str, np.ndarray] = {}
    for name, layer in peft_model.named_modules():
        module: Any = layer
        if isinstance(layer, LoraLayer) and "default" in module.lora_A:
            plain = name.removeprefix(PEFT_PREFIX)
            out[f"{plain}.lora_A"] = module.lora_A["default"].weight.detach().cpu().numpy().copy()
            out[f"{plain}.lora_B"] = module.lora_B["default"].weight.detach().cpu().numpy().copy()
    if not out:
        raise RuntimeError("the peft model has no LoRA layers (target_modules matched nothing)")
    return out


def save_lora_expert(out: str | Path, weights: dict[str, np.ndarray], cfg: LoraExpertTrainConfig,
                     meta: dict[str, Any], *, training_data: dict[str, str] | None = None, command: str = "") -> Path:
    """float16 weights + meta (name, task, base_model, training stats) + manifest."""
    return save_adapter(out, weights, cfg.lora, {**meta, "train": cfg.model_dump(exclude={"lora"})},
                        training_data=training_data, command=command, kind=KIND, dtype="float16")
