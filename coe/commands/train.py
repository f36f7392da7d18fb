"""`coe train coe-router`: the offline CoE router training."""

from __future__ import annotations

import argparse


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["train"].add_parser("coe-router", help="train the category classifier and expert map")
    p.add_argument("--config", default="configs/train/coe.yaml")
    p.add_argument("--out", default="artifacts/coe-router")
    p.add_argument("--limit", type=int, default=None, help="questions per subject (quick runs)")
    p.add_argument("--prior-map", action="store_true",
                   help="keep the config's category_map: skip scoring the experts (minutes instead of an hour cold)")
    p.set_defaults(func=run_coe_router)


def run_coe_router(args: argparse.Namespace) -> int:
    from routers.train.coe_router import train_coe_router

    command = f"coe train coe-router --config {args.config} --out {args.out}"
    if args.limit:
        command += f" --limit {args.limit}"
    if args.prior_map:
        command += " --prior-map"
    report = train_coe_router(args.config, args.out, limit=args.limit, command=command, fit_map=not args.prior_map)
    print(f"router artifact written to {args.out} (report: {args.out}/report.md)")
    return 0 if report else 1
