"""A LoRA expert (dense or ComPEFT) as a peft adapter folder, the format vLLM's `LoRARequest` loads.

vLLM reads `adapter_config.json` + `adapter_model.safetensors` with peft's tensor names; our artifacts are
checksummed folders of their own (a compressed one must be decompressed first), so each adapter is written once
into a cache folder keyed by the sha256 of its manifest: a changed artifact gets a new folder, an unchanged one is
reused across restarts. The shapes are checked against the base's safetensors headers first, so an adapter that
does not fit its base fails at start-up naming the expert instead of inside the engine at its first request.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from experts.embed.adapters import MANIFEST_FILE, sha256_file
from experts.llm.lora_experts import PEFT_PREFIX, LoraExpert
from experts.llm.safetensors_stats import read_header

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


def expert_rank(expert: LoraExpert) -> int:
    """The rank of an adapter (all its modules share it)."""
    return max(a.shape[0] for a, _ in expert.modules.values())


def base_linear_shapes(base_path: str | Path) -> dict[str, tuple[int, int]]:
    """{module: (out_features, in_features)} of every 2-D `<module>.weight` in the base's safetensors files."""
    shapes: dict[str, tuple[int, int]] = {}
    for file in sorted(Path(base_path).glob("*.safetensors")):
        for key, entry in read_header(file).items():
            if key.endswith(".weight") and len(entry["shape"]) == 2:
                shapes[key.removesuffix(".weight")] = (int(entry["shape"][0]), int(entry["shape"][1]))
    return shapes


def check_against_base(expert: LoraExpert, shapes: dict[str, tuple[int, int]], label: str) -> None:
    """ValueError naming `label` when a module is not a linear of the base or its A/B shapes do not fit it."""
    if not shapes:
        raise ValueError(f"{label}: the base model folder has no safetensors weights to check the adapter against")
    for module, (a, b) in expert.modules.items():
        if module not in shapes:
            raise ValueError(f"{label}: adapter module {module!r} is not a linear layer of the base model")
        out_f, in_f = shapes[module]
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != in_f or b.shape[0] != out_f or b.shape[1] != a.shape[0]:
            raise ValueError(f"{label}: {module} has A {tuple(a.shape)} and B {tuple(b.shape)}, the base needs "
                             f"A [r, {in_f}] and B [{out_f}, r]")


def export_peft(expert: LoraExpert, cache: str | Path, dtype: str = "float16") -> Path:
    """The expert as a peft folder under `cache` (written once per artifact version; atomic rename)."""
    from safetensors.numpy import save_file

    key = sha256_file(Path(expert.path) / MANIFEST_FILE)[:16]
    out = Path(cache) / f"{expert.name}-{key}"
    if (out / CONFIG_FILE).is_file() and (out / WEIGHTS_FILE).is_file():
        return out
    rank = expert_rank(expert)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, np.ndarray] = {}
    for module, (a, b) in expert.modules.items():
        tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"] = np.ascontiguousarray(a, dtype=dtype)
        tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"] = np.ascontiguousarray(b, dtype=dtype)
    save_file(tensors, str(tmp / WEIGHTS_FILE))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": expert.scaling * rank,
              "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
              "target_modules": sorted({m.rpartition(".")[2] for m in expert.modules}),
              "base_model_name_or_path": expert.base_model, "modules_to_save": None}
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    try:
        tmp.rename(out)
    except OSError:  # another process wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out
