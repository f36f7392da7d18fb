"""Builds the ONNX (fp32, int8) and model2vec encoders from the local MiniLM weights into the cache, once.

Nothing is downloaded: the exports start from the sentence-transformers folder of the registry package. A build
writes into a temporary folder and renames it, and `build.json` (the source package version) is written last, so
a half-built folder is never used and a new package version triggers a rebuild.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from experts.embed.encoders import EncoderError, EncoderRef
from experts.paths import cache_dir

log = logging.getLogger(__name__)
BUILD_FILE = "build.json"
BUILD_VERSION = 1  # bump when the export recipe changes: old folders are rebuilt
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
SETTINGS_FILE = "encoder.json"  # max_seq_length, pooling: what the runtime needs beside the graph
MODEL2VEC_PCA_DIMS = 256


def encoders_root() -> Path:
    return cache_dir() / "encoders"


def folder_of(ref: EncoderRef) -> Path:
    return encoders_root() / f"{ref.kind}-{ref.name}"


def _source_id(ref: EncoderRef) -> str:
    from experts.embed.query_encoder import encoder_id

    return encoder_id(ref.source)


def is_built(ref: EncoderRef) -> bool:
    marker = folder_of(ref) / BUILD_FILE
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return data.get("source") == _source_id(ref) and data.get("version") == BUILD_VERSION


def built_dir(ref: EncoderRef) -> Path:
    """The built folder of `ref`, or a clear error saying how to build it."""
    if not is_built(ref):
        raise EncoderError(f"encoder {ref} is not built (or was built from other weights) under {folder_of(ref)}; "
                           f"run `coe setup` (or `coe setup --encoder {ref}`)")
    return folder_of(ref)


def ensure_built(ref_text: str) -> Path | None:
    """Build `ref_text` if it is an ONNX / model2vec ref not yet built; returns its folder (None: nothing to build)."""
    ref = EncoderRef.parse(ref_text)
    if ref is None or ref.kind == "registry":
        return None
    if is_built(ref):
        return folder_of(ref)
    if ref.kind == "onnx-int8":
        ensure_built(f"onnx:{ref.name}")  # quantised from the fp32 graph
    out = folder_of(ref)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log.info("building encoder", extra={"encoder": str(ref), "out": str(out)})
    try:
        _recipe(ref)(ref, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / BUILD_FILE).write_text(json.dumps({"source": _source_id(ref), "version": BUILD_VERSION}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def _recipe(ref: EncoderRef) -> Callable[[EncoderRef, Path], None]:
    if ref.kind == "model2vec":
        return _distill_model2vec
    if ref.kind == "onnx":
        return _export_onnx
    if ref.kind == "onnx-int8":
        return _quantize_onnx
    return _export_variant  # fused and/or shallow: exported, fused, quantised in one folder


def _source_folder(ref: EncoderRef) -> Path:
    from experts.embed.encoder import resolve_encoder

    return Path(resolve_encoder(ref.source))


def _write_settings(src: Path, out: Path) -> None:
    st = json.loads((src / "sentence_bert_config.json").read_text())
    pooling = json.loads((src / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")):
        raise EncoderError(f"{src}: only mean pooling is exported, found {pooling}")
    settings = {"max_seq_length": int(st["max_seq_length"]), "pooling": "mean", "normalize": True,
                "dim": int(pooling["word_embedding_dimension"])}
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def _export_onnx(ref: EncoderRef, out: Path) -> None:
    """The transformer alone (last hidden state); mean pooling and normalisation run in numpy at encode time."""
    import torch
    from transformers import AutoModel

    src = _source_folder(ref)
    model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
    if ref.layers is not None:  # the first k layers: the shallow encoder's whole network
        total = len(model.encoder.layer)
        if ref.layers > total:
            raise EncoderError(f"{ref}: {ref.name} has {total} layers, {ref.layers} asked")
        model.encoder.layer = model.encoder.layer[: ref.layers]
        model.config.num_hidden_layers = ref.layers

    class Hidden(torch.nn.Module):  # keyword arguments: the positional order of forward() changes across versions
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"last_hidden_state": {0: "batch", 1: "sequence"}}
    with torch.no_grad():
        torch.onnx.export(Hidden(), args, str(out / ONNX_FILE), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    shutil.copy(src / TOKENIZER_FILE, out / TOKENIZER_FILE)
    _write_settings(src, out)


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 (weights int8 per output channel, activations quantised per batch): no calibration data.
    Per-tensor weights give cosine 0.96–0.97 to the fp32 embeddings, per-channel 0.99+ at the same speed. The
    fused graph's contrib ops defeat shape inference, hence the default float type."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


def _quantize_onnx(ref: EncoderRef, out: Path) -> None:
    fp32 = folder_of(EncoderRef("onnx", ref.name))
    _quantize(fp32 / ONNX_FILE, out / ONNX_FILE)
    for name in (TOKENIZER_FILE, SETTINGS_FILE):
        shutil.copy(fp32 / name, out / name)


def _fuse(src: Path, dst: Path, ref: EncoderRef) -> None:
    """ONNX Runtime's BERT optimizer: embedding+LayerNorm, attention, skip-LayerNorm and bias-GELU each become one
    kernel (6 Attention, 12 SkipLayerNormalization, 6 BiasGelu for the MiniLM), fewer ops per prompt."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((_source_folder(ref) / "config.json").read_text())
    model = optimize_model(str(src), model_type="bert", num_heads=int(config["num_attention_heads"]),
                           hidden_size=int(config["hidden_size"]))
    model.save_model_to_file(str(dst))


def _export_variant(ref: EncoderRef, out: Path) -> None:
    """Export (the first k layers when asked), then fuse and/or quantise; only model.onnx is kept."""
    _export_onnx(ref, out)
    graph = out / ONNX_FILE
    if ref.fused:
        fused = out / "fused.onnx"
        _fuse(graph, fused, ref)
        os.replace(fused, graph)
    if ref.int8:
        quantised = out / "int8.onnx"
        _quantize(graph, quantised)
        os.replace(quantised, graph)


def _distill_model2vec(ref: EncoderRef, out: Path) -> None:
    """model2vec's distillation: every vocabulary token through the model once, PCA to 256 dims, Zipf weighting."""
    from model2vec.distill import distill

    model = distill(model_name=str(_source_folder(ref)), pca_dims=MODEL2VEC_PCA_DIMS, device="cpu")
    model.save_pretrained(str(out))
