"""`coe bench …`: performance benchmarks (each prints a table; --json writes the headline figures)."""

from __future__ import annotations

import argparse

from coe.config import load_config


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["bench"].add_parser("routing", help="router latency and gateway overhead")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--json", default=None)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--router-only", action="store_true", help="router latency alone, no server")
    p.add_argument("--repeats", type=int, default=200, help="batch-1 router calls timed")
    p.add_argument("--encoder", action="append", default=[], metavar="REF",
                   help="router encoder (repeatable with --router-only: one row each; default: the config's)")
    p.add_argument("--artifact", action="append", default=[], metavar="PATH",
                   help="the router artifact trained with each --encoder (default: the config's)")
    p.add_argument("--threads", type=int, action="append", default=None,
                   help="ONNX Runtime intra-op threads (repeatable with --router-only; default 1)")
    p.add_argument("--ingress-url", default=None, metavar="URL",
                   help="send the routed requests here instead of the Serve proxy (e.g. a direct-ingress replica)")
    p.add_argument("--peer", choices=["semantic-router"], default=None,
                   help="also route the held-out prompts with this package (same encoder) and compare")
    p.set_defaults(func=run_routing)

    p = groups["bench"].add_parser("retrieve", help="/v1/retrieve latency and queries/s, routed vs one expert")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--corpus", default="scifact")
    p.add_argument("--queries", type=int, default=300, help="single-query requests per run")
    p.add_argument("--concurrency", type=int, action="append", help="repeatable (default: 1 and 16)")
    p.add_argument("--expert", default=None, help="the expert of the direct runs (default: the first configured)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=run_retrieve)

    p = groups["bench"].add_parser("memory", help="swap bandwidths and the eviction/scheduling trace replay")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="PNG (default: beside --json)")
    p.set_defaults(func=run_memory)

    p = groups["bench"].add_parser("cluster", help="routed chat on a local two-node Ray cluster, 1 vs 2 replicas")
    p.add_argument("--json", default=None)
    p.set_defaults(func=run_cluster)


def run_memory(args: argparse.Namespace) -> int:
    from eval.bench_memory import run_memory_bench

    run_memory_bench(args.json, args.plot)
    return 0


def run_cluster(args: argparse.Namespace) -> int:
    from eval.bench_cluster import main

    return main(["--json", args.json] if args.json else [])


def run_routing(args: argparse.Namespace) -> int:
    from eval.bench_routing import run, run_router_only, with_router

    cfg = load_config(args.config)
    if args.port is not None:
        cfg.server.port = args.port
    if args.peer:
        from eval.peer_semantic_router import run_peer

        if len(args.encoder) > 1 or len(args.artifact) > 1:
            raise SystemExit("--peer compares one encoder: give --encoder / --artifact at most once")
        if args.encoder:
            cfg = with_router(cfg, args.encoder[0], args.artifact[0] if args.artifact else None)
        run_peer(cfg, json_path=args.json)
        return 0
    if args.router_only:
        run_router_only(cfg, args.encoder, args.artifact, args.threads or [1], args.json, args.repeats)
        return 0
    if len(args.encoder) > 1 or len(args.artifact) > 1:
        raise SystemExit("several --encoder / --artifact values need --router-only")
    if args.encoder:
        cfg = with_router(cfg, args.encoder[0], args.artifact[0] if args.artifact else None)
    run(cfg, json_path=args.json, n_router=args.repeats, n_gateway=args.requests, ingress_url=args.ingress_url)
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    from eval.bench_retrieve import run

    run(load_config(args.config), corpus=args.corpus, n_queries=args.queries,
        concurrencies=tuple(args.concurrency or (1, 16)), expert=args.expert, json_path=args.json)
    return 0
