"""The compressed-adapter artifact (kind "llm-lora-compeft") and one loader for dense or compressed LoRA experts.

It uses the checksummed adapter format of experts/embed/adapters.py: every tensor is stored as uint8 (packed
masks and signs, or the raw bytes of kept values), and meta.json carries each matrix's shape, kept count and
scale, the density, and the sha256 of the dense expert it came from. Loading verifies the checksums, then
decompresses into the same A/B matrices a dense expert gives, so the rest of the code never sees the difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from experts.embed.adapters import (
    MANIFEST_FILE,
    META_FILE,
    WEIGHTS_FILE,
    AdapterError,
    load_adapter,
    save_adapter,
    sha256_file,
)
from experts.llm.lora_experts import KIND as DENSE_KIND
from experts.llm.lora_experts import LoraExpert, load_lora_expert
from experts.lora.compeft import compress_matrix, dense_nbytes

KIND = "llm-lora-compeft"
DEFAULT_DENSITY = 0.3  # chosen by `coe bench lora` (README "LoRA experts"): the smallest within the accuracy goals


def artifact_kind(path: str | Path) -> str:
    """The manifest kind of an adapter folder (a clear error when there is no manifest)."""
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.is_file():
        raise AdapterError(f"{manifest}: missing (not an adapter folder)")
    try:
        return str(json.loads(manifest.read_text()).get("kind", ""))
    except json.JSONDecodeError as err:
        raise AdapterError(f"{manifest}: not valid JSON ({err})") from None


def compress_expert(src: str | Path, out: str | Path, density: float = DEFAULT_DENSITY, quantize: bool = True,
                    command: str = "") -> dict[str, Any]:
    """Compress a dense LoRA expert folder into a ComPEFT artifact; returns sizes and the ratio.

    All matrices' masks are one byte string, all signs (or kept values) another, the scales a third: three
    tensors instead of two per matrix, so safetensors headers do not eat the saving."""
    expert = load_lora_expert(src)
    order: list[list[Any]] = []
    masks, payloads, scales = [], [], []
    dense: dict[str, np.ndarray] = {}
    values_dtype: type[np.floating[Any]] = np.float16
    parts = [(f"{m}.{p}", x) for m, (a, b) in expert.modules.items() for p, x in (("lora_A", a), ("lora_B", b))]
    compressed = [(key, x, compress_matrix(x, density, quantize)) for key, x in parts]
    if not quantize and any(c.values is not None and c.values.dtype != np.float16 for _, _, c in compressed):
        values_dtype = np.float32
    for key, x, c in compressed:
        dense[key] = x
        order.append([key, c.kept, *x.shape])
        masks.append(np.unpackbits(c.mask, count=x.size))
        if c.signs is not None:
            payloads.append(np.unpackbits(c.signs, count=c.kept))
        elif c.values is not None:
            payloads.append(c.values.astype(values_dtype).view(np.uint8))
        scales.append(c.scale)
    # One bit string for all masks and one for all signs (no per-matrix padding): decompression is then a
    # handful of whole-adapter numpy passes instead of hundreds of small ones.
    payload = np.packbits(np.concatenate(payloads)) if quantize else np.concatenate(payloads)
    weights = {"masks": np.packbits(np.concatenate(masks)), "payload": payload,
               "scales": np.asarray(scales, dtype=np.float32).view(np.uint8)}
    meta = {k: v for k, v in expert.meta.items() if k != "lora"}
    meta["compression"] = {"method": "compeft", "density": density, "quantized": quantize, "matrices": order,
                           "values_dtype": None if quantize else np.dtype(values_dtype).name,
                           "source": str(expert.path),
                           "source_manifest_sha256": sha256_file(expert.path / MANIFEST_FILE)}
    spec = load_adapter(src, kind=DENSE_KIND).lora
    folder = save_adapter(out, weights, spec, meta, command=command, kind=KIND, dtype="uint8")
    src_bytes, out_bytes = folder_bytes(expert.path), folder_bytes(folder)
    return {"source": str(expert.path), "out": str(folder), "density": density, "quantized": quantize,
            "dense_float16_bytes": dense_nbytes(dense), "source_bytes": src_bytes, "bytes": out_bytes,
            "ratio": round(src_bytes / out_bytes, 3)}


def folder_bytes(folder: Path) -> int:
    """Weights + meta + manifest: what the artifact costs on disk."""
    return sum((folder / f).stat().st_size for f in (WEIGHTS_FILE, META_FILE, MANIFEST_FILE))


def load_compressed_expert(path: str | Path) -> LoraExpert:
    """A verified ComPEFT artifact, decompressed into float32 A/B matrices per module."""
    art = load_adapter(path, kind=KIND)
    info = art.meta.get("compression") or {}
    order = info.get("matrices") or []
    try:
        masks, payload = _bytes(art.weights, "masks"), _bytes(art.weights, "payload")
        scales = _bytes(art.weights, "scales").view(np.float32)
    except KeyError as err:
        raise AdapterError(f"{art.path}: tensor {err} missing") from None
    if not order or len(scales) != len(order):
        raise AdapterError(f"{art.path}: compression.matrices does not match the stored scales")
    quantized = bool(info.get("quantized", True))
    sizes = np.array([int(np.prod(shape)) for _, _, *shape in order])
    kept = np.array([int(k) for _, k, *_ in order], dtype=np.int64)  # in meta: counting them costs more
    bits = np.unpackbits(masks, count=int(sizes.sum())).view(bool)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if np.count_nonzero(bits) != int(kept.sum()):
        raise AdapterError(f"{art.path}: the masks do not match the kept counts of compression.matrices")
    if quantized:
        per_entry = np.repeat(scales, kept)
        values = np.where(np.unpackbits(payload, count=int(kept.sum())).view(bool), -per_entry, per_entry)
    else:
        values = payload.view(np.dtype(info["values_dtype"])).astype(np.float32)
    if len(values) != int(kept.sum()):
        raise AdapterError(f"{art.path}: stored values do not match the masks")
    flat = np.zeros(int(sizes.sum()), dtype=np.float32)
    flat[np.flatnonzero(bits)] = values
    dense = {key: flat[o:o + n].reshape(shape) for (key, _, *shape), o, n in zip(order, offsets, sizes, strict=True)}
    modules: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in dense:
        module, _, part = key.rpartition(".")
        if part == "lora_A":
            b = dense.get(f"{module}.lora_B")
            if b is None:
                raise AdapterError(f"{art.path}: module {module!r} has lora_A but no lora_B")
            modules[module] = (dense[key], b)
    return LoraExpert(str(art.meta.get("name", art.path.name)), art.path, modules, art.lora.alpha / art.lora.r,
                      str(art.meta.get("base_model", "")), art.meta)


def _bytes(weights: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in weights:
        raise KeyError(key)
    return np.ascontiguousarray(weights[key].astype(np.uint8))  # load_adapter hands every tensor back as float32


def load_any_expert(path: str | Path) -> LoraExpert:
    """A dense (`coe train lora-expert`) or compressed (`coe compress-adapter`) LoRA expert folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise AdapterError(f"{folder}: adapter folder not found")
    kind = artifact_kind(folder)
    if kind == KIND:
        return load_compressed_expert(folder)
    if kind == DENSE_KIND:
        return load_lora_expert(folder)
    raise AdapterError(f"{folder / MANIFEST_FILE}: kind {kind!r} is not a LoRA expert ({DENSE_KIND} or {KIND})")
