"""`coe eval routing --benchmark mmlu`: the CoE quality–cost frontier (eval/routing.py)."""

from __future__ import annotations

import argparse


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["eval"].add_parser("routing", help="CoE accuracy vs. active parameters on held-out MMLU")
    p.add_argument("--benchmark", default="mmlu", choices=["mmlu"])
    p.add_argument("--limit", type=int, default=None, help="questions per subject (dev and held-out)")
    p.add_argument("--json", default=None, help="write the figures here (and a PNG plot beside it)")
    p.add_argument("--plot", default=None, help="PNG path (default: the JSON path with .png)")
    p.add_argument("--data", default=None, help="dataset folder (sets COE_DATA_DIR)")
    p.add_argument("--config", default="configs/train/coe.yaml", help="training recipe (experts, splits, sweep)")
    p.add_argument("--artifact", default="artifacts/coe-router")
    p.add_argument("--dev-cv", action="store_true",
                   help="instead: cross-validate the scoring variants (letter prior, shrinkage) on the dev split")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dev_cv:
        from eval.routing_cv import run_dev_cv

        run_dev_cv(args.config, args.json)
        return 0
    from eval.routing import run_routing_eval

    run_routing_eval(args.benchmark, args.limit, args.json, args.data, args.config, args.artifact, plot_path=args.plot)
    return 0
