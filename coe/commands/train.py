"""`coe train coe-router`: the offline CoE router training."""

from __future__ import annotations

import argparse


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["train"].add_parser("coe-router", help="train the category classifier and expert map")
    p.add_argument("--config", default="configs/train/coe.yaml")
    p.add_argument("--out", default="artifacts/coe-router")
    p.add_argument("--limit", type=int, default=None, help="questions per subject (quick runs)")
    p.set_defaults(func=run_coe_router)


def run_coe_router(args: argparse.Namespace) -> int:
    from routers.train.coe_router import train_coe_router

    train_coe_router(args.config, args.out, limit=args.limit)
    return 0
