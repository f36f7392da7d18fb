"""`coe setup`: build what serving needs once (converted model weights, the router artifact, corpus indexes)."""

from __future__ import annotations

import argparse

from coe.config import CoeConfig, load_config
from coe.serve.routing import artifact_path

TRAIN_CONFIG = "configs/train/coe.yaml"


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("setup", help="convert the registry models, train the router if absent, build corpus indexes")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--encoder", action="append", default=[], metavar="REF",
                   help="also build this encoder (onnx:/onnx-int8:/model2vec:<name>; repeatable)")
    p.set_defaults(func=run)


def ensure_encoders(cfg: CoeConfig, extra: list[str]) -> None:
    """Build the router's encoder (ONNX export / int8 quantisation / model2vec distillation of the local weights)
    and any asked for, before the router artifact needs it; the fp32 ONNX graph is always built (seconds), as the
    int8 one is quantised from it and the tests compare both with PyTorch."""
    from experts.embed.encoder_build import ensure_built

    refs = dict.fromkeys(["onnx:all-minilm-l6-v2", cfg.router.encoder, *extra])
    for ref in refs:
        folder = ensure_built(ref)
        if folder is not None:
            print(f"encoder {ref}: {folder}", flush=True)


def ensure_router_artifact(cfg: CoeConfig) -> None:
    """Train the CoE router when its artifact is missing, with the config's prior map (a few minutes; fitting the
    map scores every expert, an hour cold on 2 cores: `coe train coe-router` does it)."""
    path = artifact_path(cfg.router.artifact)
    if (path / "manifest.json").exists():
        return
    from routers.train.coe_router import train_coe_router

    print(f"router artifact {path} is missing: training it from {TRAIN_CONFIG}", flush=True)
    enc = cfg.router.encoder
    train_coe_router(TRAIN_CONFIG, path, encoder_ref=enc,
                     command=f"coe train coe-router --config {TRAIN_CONFIG} --out {path} --prior-map --encoder {enc}")


def ensure_indexes(cfg: CoeConfig) -> None:
    """Build the faiss index of every configured corpus here, on all cores, instead of in the retriever replica
    (one CPU there); a corpus whose data is missing is only reported: the server answers it with 404."""
    if cfg.retrieval is None:
        return
    from coe.retrieval import RetrievalService

    service = RetrievalService(cfg.retrieval)
    missing = service.load_indexes()
    for corpus in cfg.retrieval.corpora:
        if corpus in missing:
            print(f"index {corpus}: data missing ({missing[corpus]}); it will be served as 404", flush=True)
        else:
            print(f"index {corpus}: {len(service.index(corpus).doc_ids)} documents", flush=True)


def run(args: argparse.Namespace) -> int:
    from experts.llm.registry_models import build_all

    cfg = load_config(args.config)
    names = [e.model.removeprefix("registry:") for e in cfg.experts if e.model.startswith("registry:")]
    for name, path in build_all(names).items():
        print(f"{name}: {path}")
    ensure_encoders(cfg, args.encoder)
    ensure_router_artifact(cfg)
    ensure_indexes(cfg)
    return 0
