"""`coe bench load`: concurrent clients against the served app (statuses, latency, completeness, RSS)."""

from __future__ import annotations

import argparse

from coe.config import load_config


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["bench"].add_parser("load", help="load test: statuses, p50/p99, lost answers, Ray RSS growth")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--port", type=int, default=None, help="default: a free loopback port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.set_defaults(func=run_load)


def run_load(args: argparse.Namespace) -> int:
    import socket

    from eval.bench_load import run

    cfg = load_config(args.config)
    if args.port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = int(s.getsockname()[1])
    cfg.server.port = args.port
    figures = run(cfg, duration_s=args.duration, concurrency=args.concurrency, json_path=args.json,
                  max_tokens=args.max_tokens, seed=args.seed)
    return 0 if figures["status_5xx"] == 0 and figures["lost"] == 0 else 1
