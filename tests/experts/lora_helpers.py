"""Random (non-zero) peft LoRA adapters on every linear layer of a real model, for tests of the code around them."""

from __future__ import annotations

from typing import Any

import torch

from experts.train.llm_lora import default_lora


def random_peft(model: Any, seed: int, std: float = 0.02) -> Any:
    """The model wrapped by peft with the default LoRA spec and B drawn from N(0, std²) (peft starts B at zero)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    spec = default_lora()
    peft_model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=0.0,
                                                  target_modules=spec.target_modules))
    for module in peft_model.modules():
        if hasattr(module, "lora_B") and "default" in getattr(module, "lora_B", {}):
            torch.nn.init.normal_(module.lora_B["default"].weight, std=std)
    return peft_model
