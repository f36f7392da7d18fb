"""Real tier moves for torch modules; the transformers backend calls these from its `to(tier)`.

- device <- host: `module.to(device, non_blocking=True)` from pinned host buffers on CUDA; on a CPU-only
  machine "device" is the materialised runnable module, so the move is building it around the host tensors.
- host <- device: copy every parameter and buffer into (pinned, on CUDA) host memory, release the module.
- disk <- host: drop the tensors; the safetensors files stay where they are.
- host <- disk: read the safetensors files with large sequential reads into one preallocated (pinned on CUDA)
  buffer per file (`safetensors_read`), tensors as views of it, put into a meta-initialised module with
  `load_state_dict(assign=True)`, so no second copy is made.
Non-persistent buffers (e.g. rotary tables) are not in the files; they are kept aside, they are tiny.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from experts.memory.safetensors_read import read_safetensors

HostState = dict[str, torch.Tensor]


def meta_module(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The module's skeleton without memory for its weights."""
    with torch.device("meta"):
        return factory()


def capture(module: torch.nn.Module, pin: bool = False) -> HostState:
    """Every parameter and buffer copied to host memory (pinned for fast, async copies back to a GPU)."""
    out: HostState = {}
    copies: dict[int, torch.Tensor] = {}  # tied tensors are copied once and stay tied
    for kind, items in (("p", module.named_parameters(remove_duplicate=False)),
                        ("b", module.named_buffers(remove_duplicate=False))):
        for name, t in items:
            if id(t) not in copies:
                host = t.detach().to("cpu")
                copies[id(t)] = host.pin_memory() if pin and torch.cuda.is_available() else host
            out[f"{kind}:{name}"] = copies[id(t)]
    return out


def restore(module: torch.nn.Module, state: HostState) -> torch.nn.Module:
    """Puts captured tensors into a (meta) module in place, without copying them."""
    for key, tensor in state.items():
        kind, name = key.split(":", 1)
        owner, _, leaf = name.rpartition(".")
        sub = module.get_submodule(owner) if owner else module
        if kind == "p":
            sub._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
        else:
            sub._buffers[leaf] = tensor
    return module


def to_device(module: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    """Host -> device; asynchronous from pinned memory on CUDA (synchronised before returning)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return module
    module = module.to(dev, non_blocking=True)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return module


def non_persistent_buffers(module: torch.nn.Module) -> HostState:
    """The buffers a state dict leaves out; they must be kept aside to rebuild the module from disk."""
    persistent = set(module.state_dict(keep_vars=True))
    return {f"b:{n}": b.detach().to("cpu").clone() for n, b in module.named_buffers(remove_duplicate=False)
            if n not in persistent}


def load_safetensors(files: Iterable[str | Path], copy: bool = True) -> dict[str, torch.Tensor]:
    """Tensors of safetensors files; `copy` reads them into private (pinned on CUDA) memory with large
    sequential reads, so the host tier really holds them; `copy=False` maps them (page cache backed)."""
    if copy:
        return read_safetensors(files)
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), framework="pt", device="cpu") as sf:
            for key in sf.keys():  # noqa: SIM118 (safe_open is not a mapping)
                out[key] = sf.get_tensor(key)
    return out


def load_from_disk(factory: Callable[[], torch.nn.Module], files: Iterable[str | Path],
                   extra_buffers: HostState | None = None, copy: bool = True) -> torch.nn.Module:
    """Disk -> host: a meta skeleton filled with the files' tensors (assign=True, no second copy)."""
    module = meta_module(factory)
    state = load_safetensors(files, copy=copy)
    missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
    if unexpected:
        raise ValueError(f"weights not in the model: {sorted(unexpected)[:5]}")
    tie: Any = getattr(module, "tie_weights", None)
    if callable(tie):
        tie()  # tied embeddings are stored once in the files
    restore(module, extra_buffers or {})
    still_meta = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if still_meta:
        raise ValueError(f"weights missing from the files: {still_meta[:5]} (of {len(missing)} missing)")
    return module.eval()


def nbytes(module_or_state: torch.nn.Module | HostState) -> int:
    """Bytes of the weights (what TierManager budgets), tied tensors counted once."""
    tensors: Any = (module_or_state.values() if isinstance(module_or_state, dict)
                    else [*module_or_state.parameters(), *module_or_state.buffers()])
    seen: dict[int, int] = {}
    for t in tensors:  # keyed by the tensor's own address: views of one file buffer share a storage
        key = t.data_ptr() or id(t)
        seen[key] = max(seen.get(key, 0), t.numel() * t.element_size())
    return sum(seen.values())
