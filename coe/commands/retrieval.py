"""`coe index`, `coe train retriever-expert|retriever-router`, `coe eval beir`: routed retrieval offline work."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = "configs/retrieval.yaml"


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("index", help="build (or verify) the faiss index of every configured corpus")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="YAML with a `retrieval:` section")
    p.add_argument("--corpus", action="append", help="only these corpora (repeatable)")
    p.set_defaults(func=run_index)

    p = groups["train"].add_parser("retriever-expert", help="train a query-side LoRA expert on a dataset's train qrels")
    p.add_argument("dataset", help="scifact | cranfield | cisi | npl | multitask | a folder in BEIR layout")
    p.add_argument("--out", default=None, help="artifact folder (default artifacts/retriever/<name>)")
    p.add_argument("--max-steps", type=int, default=None, help="upper bound of the epoch-based step count")
    p.add_argument("--steps", type=int, default=None, help="exactly this many optimizer steps (overrides the epochs)")
    p.add_argument("--pseudo-queries", type=int, default=None,
                   help="also train on up to this many pseudo-queries cut from each dataset's documents (default "
                        "2000, the committed recipe; 0: judged queries only)")
    p.add_argument("--pseudo-share", type=float, default=0.5, help="share of batches drawn from pseudo-queries")
    p.add_argument("--seed", type=int, default=0, help="seed of the batches, pseudo-queries and adapter init")
    p.set_defaults(func=run_train_expert)

    p = groups["train"].add_parser("retriever-router", help="pilot embeddings of the retriever experts")
    p.add_argument("--k", type=int, default=8, help="KMeans centroids per expert")
    p.add_argument("--no-base", action="store_true", help="do not let the router pick the plain base encoder")
    p.add_argument("--experts-dir", default=None, help="folder of the expert adapters (default artifacts/retriever)")
    p.add_argument("--out", default=None, help="default: <experts-dir>/router")
    p.set_defaults(func=run_train_router)

    p = groups["eval"].add_parser("beir", help="nDCG@10 / recall@100 of base, experts, multitask, routers, oracle")
    p.add_argument("datasets", nargs="*", help="dataset names or BEIR folders (default: all seven)")
    p.add_argument("--datasets", dest="datasets_csv", default=None,
                   help="the same as a comma-separated list: DIR[,DIR...]")
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--plot", default=None, help="write a PNG bar chart here")
    p.add_argument("--experts-dir", default=None,
                   help="folder of the adapters and the router to evaluate (default artifacts/retriever)")
    p.set_defaults(func=run_eval_beir)


def _command() -> str:
    return "coe " + shlex.join(sys.argv[1:])


def load_retrieval_config(path: str | Path):  # noqa: ANN201
    """The `retrieval:` section of a YAML file as a validated RetrievalConfig."""
    import yaml

    from coe.retrieval_config import RetrievalConfig

    data = yaml.safe_load(Path(path).read_text()) or {}
    return RetrievalConfig.model_validate(data.get("retrieval", data))


def run_index(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from experts.embed.index import load_or_build_index
    from experts.embed.query_encoder import ExpertQueryEncoder, encoder_id

    cfg = load_retrieval_config(args.config)
    encoder = ExpertQueryEncoder(cfg.encoder)
    table = Table(title=f"indexes in {cfg.indexes()}")
    for col in ("corpus", "documents", "type", "build s (recorded)", "this run s"):
        table.add_column(col)
    for name, corpus in cfg.corpora.items():
        if args.corpus and name not in args.corpus:
            continue
        start = time.perf_counter()
        idx = load_or_build_index(name, corpus.folder(), encoder, encoder_id(cfg.encoder), cfg.indexes(),
                                  show_progress=True)
        table.add_row(name, str(len(idx.doc_ids)), idx.manifest["index_type"], str(idx.manifest["build_seconds"]),
                      f"{time.perf_counter() - start:.1f}")

    Console().print(table)
    return 0


def run_train_expert(args: argparse.Namespace) -> int:
    from experts.train.embed_lora import LoraTrainConfig
    from routers.train.retriever import (
        EXPERT_RECIPE,
        MULTITASK_RECIPE,
        train_retriever_expert,
        train_retriever_multitask,
    )

    out = Path(args.out) if args.out else None
    recipe = MULTITASK_RECIPE if args.dataset == "multitask" else EXPERT_RECIPE
    given = {"max_steps": args.max_steps, "pseudo_queries": args.pseudo_queries}
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.steps:
        overrides |= {"min_steps": args.steps, "max_steps": args.steps}
    cfg = LoraTrainConfig.model_validate({**recipe, **overrides, "pseudo_share": args.pseudo_share, "seed": args.seed})
    if args.dataset == "multitask":
        report = train_retriever_multitask(out=out, cfg=cfg, command=_command())
    else:
        report = train_retriever_expert(args.dataset, out=out, cfg=cfg, command=_command())
    print(report)
    return 0


def run_train_router(args: argparse.Namespace) -> int:
    from routers.train.retriever import ARTIFACTS, EXPERT_DATASETS, train_retriever_router

    root = Path(args.experts_dir) if args.experts_dir else ARTIFACTS
    meta = train_retriever_router(experts={name: root / name for name in EXPERT_DATASETS},
                                  out=Path(args.out) if args.out else root / "router", k=args.k,
                                  include_base=not args.no_base, command=_command())
    print({"assignment": meta["assignment"], "train_seconds": meta["train_seconds"]})
    return 0


def run_eval_beir(args: argparse.Namespace) -> int:
    from eval.beir import run_beir_eval
    from routers.train.retriever import ARTIFACTS

    datasets = list(args.datasets) + [d for d in (args.datasets_csv or "").split(",") if d.strip()]
    run_beir_eval(datasets or None, json_path=args.json, plot_path=args.plot,
                  experts_dir=Path(args.experts_dir) if args.experts_dir else ARTIFACTS)
    return 0
