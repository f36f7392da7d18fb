"""A trained LLM LoRA expert as serving reads it: A and B per module of the plain model, and its scaling.

Weights are stored per module ("model.layers.0.self_attn.q_proj.lora_A" …) in float16 safetensors with a
checksummed manifest (experts/embed/adapters.py), which is what the MoErging layer (experts/llm/moerging.py) and the
multi-LoRA runtime (experts/lora/) load: no peft at serving time. Training writes them: experts/train/llm_lora.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experts.embed.adapters import load_adapter

KIND = "llm-lora-expert"
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class LoraExpert:
    """A verified LoRA expert: A [r, d_in] and B [d_out, r] per module of the plain model, and its scaling."""

    name: str
    path: Path
    modules: dict[str, tuple[np.ndarray, np.ndarray]]
    scaling: float
    base_model: str
    meta: dict[str, Any]


def load_lora_expert(path: str | Path) -> LoraExpert:
    """A checksummed LoRA expert folder; every module must have both A and B."""
    art = load_adapter(path, kind=KIND)
    modules: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, value in art.weights.items():
        module, _, part = key.rpartition(".")
        if part not in ("lora_A", "lora_B"):
            raise ValueError(f"{art.path}: unexpected tensor {key!r}")
        a, b = modules.get(module, (None, None))
        modules[module] = (value, b) if part == "lora_A" else (a, value)  # type: ignore[assignment]
    broken = [m for m, (a, b) in modules.items() if a is None or b is None]
    if broken:
        raise ValueError(f"{art.path}: modules without both lora_A and lora_B: {broken[:3]}")
    return LoraExpert(str(art.meta.get("name", art.path.name)), art.path, modules,
                      art.lora.alpha / art.lora.r, str(art.meta.get("base_model", "")), art.meta)
