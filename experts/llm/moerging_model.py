"""A causal LM turned into a MoErging expert: every LoRA-targeted linear becomes a MoErgingLinear over N LoRA experts.

The gates and the experts' task instructions are one artifact (kind "moerging-gates", experts/embed/adapters.py):
gate tensors [N, d_in] per module, the instruction embeddings E [N, d_enc], and in meta.json the expert folders,
the instruction texts (readable and editable) and the routing defaults. The wrapping is reversible (`unwrap`), so
the tier moves of the transformers backend keep working on the plain module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from experts.embed.adapters import LoraSpec, load_adapter, save_adapter
from experts.llm.lora_experts import LoraExpert, load_lora_expert
from experts.llm.moerging import LoRAWeights, MoErgingLinear, routing_trace
from experts.paths import repo_path

GATES_KIND = "moerging-gates"
EMBEDDINGS_KEY = "instruction_embeddings"


@dataclass(frozen=True)
class GateArtifact:
    """Verified gates: per-module gate matrices, instruction embeddings, and the meta that names the experts."""

    path: Path
    gates: dict[str, np.ndarray]
    embeddings: np.ndarray
    experts: list[str]
    expert_paths: list[str]
    instructions: dict[str, str]
    meta: dict[str, Any]


def resolve_path(ref: str | Path) -> Path:
    """A folder named in an artifact: absolute, relative to the working directory, or to the repository."""
    return repo_path(ref, cwd_first=True)


def save_gates(out: str | Path, gates: dict[str, np.ndarray], embeddings: np.ndarray, experts: Sequence[LoraExpert],
               instructions: dict[str, str], meta: dict[str, Any], *, training_data: dict[str, str] | None = None,
               command: str = "") -> Path:
    names = [e.name for e in experts]
    missing = [n for n in names if n not in instructions]
    if missing:
        raise ValueError(f"no instruction for experts {missing}")
    weights = {**gates, EMBEDDINGS_KEY: np.asarray(embeddings, dtype=np.float32)}
    full_meta = {**meta, "experts": names, "expert_paths": [str(e.path) for e in experts],
                 "instructions": {n: instructions[n] for n in names}, "base_model": experts[0].base_model}
    return save_adapter(out, weights, LoraSpec(), full_meta, training_data=training_data, command=command,
                        kind=GATES_KIND)


def load_gates(path: str | Path) -> GateArtifact:
    art = load_adapter(path, kind=GATES_KIND)
    weights = dict(art.weights)
    try:
        embeddings = weights.pop(EMBEDDINGS_KEY)
        experts = list(art.meta["experts"])
        paths = list(art.meta["expert_paths"])
        instructions = dict(art.meta["instructions"])
    except KeyError as err:
        raise ValueError(f"{art.path}: gates artifact lacks {err}") from None
    bad = [name for name, g in weights.items() if g.ndim != 2 or g.shape[0] != len(experts)]
    if bad or embeddings.shape[0] != len(experts) or len(paths) != len(experts):
        raise ValueError(f"{art.path}: gate or embedding shapes do not match {len(experts)} experts")
    return GateArtifact(art.path, weights, embeddings, experts, paths, instructions, art.meta)


def check_experts(experts: Sequence[LoraExpert]) -> list[str]:
    """The modules every expert adapts (they must agree: one routing layer per module)."""
    if not experts:
        raise ValueError("a MoErging model needs at least one LoRA expert")
    modules = sorted(experts[0].modules)
    for e in experts[1:]:
        if sorted(e.modules) != modules:
            raise ValueError(f"LoRA expert {e.name!r} adapts other modules than {experts[0].name!r}")
        if e.base_model != experts[0].base_model:
            raise ValueError(f"LoRA experts {experts[0].name!r} and {e.name!r} have different base models")
    return modules


class MoErgingModel:
    """Wraps a loaded causal LM in place; routing settings and the global scores apply to every module."""

    def __init__(self, model: nn.Module, experts: Sequence[LoraExpert], gates: dict[str, np.ndarray] | None = None,
                 alpha: float = 0.0, top_k: int = 2) -> None:
        self.model = model
        self.experts = [e.name for e in experts]
        self._originals: dict[str, nn.Linear] = {}
        self.modules: dict[str, MoErgingLinear] = {}
        dtype = next(model.parameters()).dtype
        for name in check_experts(experts):
            base = model.get_submodule(name)
            if not isinstance(base, nn.Linear):
                raise ValueError(f"module {name!r} is {type(base).__name__}, not a Linear")
            loras = [LoRAWeights(torch.from_numpy(e.modules[name][0]).to(dtype),
                                 torch.from_numpy(e.modules[name][1]).to(dtype), e.scaling) for e in experts]
            g = torch.from_numpy(gates[name]).to(dtype) if gates else torch.zeros(len(experts), base.in_features,
                                                                                 dtype=dtype)
            self.modules[name] = MoErgingLinear(base, loras, g, alpha=alpha, top_k=top_k)
            self._originals[name] = base
            self._swap(name, self.modules[name])

    def _swap(self, name: str, module: nn.Module) -> None:
        owner, _, leaf = name.rpartition(".")
        setattr(self.model.get_submodule(owner) if owner else self.model, leaf, module)

    def unwrap(self) -> nn.Module:
        """Puts the plain linears back (the model is plain again) and returns the model."""
        for name, base in self._originals.items():
            self._swap(name, base)
        return self.model

    def wrap(self) -> None:
        """Puts the MoErging layers back after `unwrap` (same experts, gates and settings)."""
        for name, module in self.modules.items():
            self._swap(name, module)

    def set_routing(self, alpha: float, top_k: int) -> None:
        for m in self.modules.values():
            m.alpha, m.top_k = float(alpha), min(int(top_k), m.num_experts)

    def set_global_scores(self, g: np.ndarray | Sequence[float]) -> None:
        t = torch.as_tensor(np.asarray(g, dtype=np.float32))
        for m in self.modules.values():
            m.set_global_scores(t)

    def fix_weights(self, weights: Sequence[float] | None) -> None:
        """Routing bypassed with the same weights everywhere (all zeros: the base model), or None to route."""
        t = None if weights is None else torch.tensor(list(weights), dtype=torch.float32)
        for m in self.modules.values():
            m.fixed_weights = t

    def capture(self, on: bool) -> None:
        for m in self.modules.values():
            m.capture = on
            m.trace.clear()

    def trace(self) -> dict[str, Any]:
        """{"experts", "mean" (over modules and tokens), "modules" {name: weights}}; clears the capture."""
        per_module = routing_trace(self.modules)
        mean = np.mean(list(per_module.values()), axis=0) if per_module else np.zeros(len(self.experts))
        return {"experts": self.experts, "mean": [round(float(x), 4) for x in mean], "modules": per_module}

    def gates(self) -> dict[str, np.ndarray]:
        return {n: m.gates.detach().float().cpu().numpy() for n, m in self.modules.items()}


def load_experts(paths: Sequence[str | Path]) -> list[LoraExpert]:
    return [load_lora_expert(resolve_path(p)) for p in paths]
