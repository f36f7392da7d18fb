"""`coe eval outcomes`: routers trained and measured on recorded outcomes of real LLMs (eval/outcomes.py)."""

from __future__ import annotations

import argparse


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["eval"].add_parser("outcomes", help="CoE and per-prompt routers on recorded outcome tables "
                                  "(accuracy, cost, frontier, APGR/CPT)")
    p.add_argument("--train", required=True, help="training table folder(s), comma-separated (a bare name is looked "
                   "up under COE_DATA_DIR/outcomes)")
    p.add_argument("--test", default=None, help="test folder(s); with --cv leave it out (K-fold over --train)")
    p.add_argument("--cv", type=int, default=None, help="K-fold by prompt over the training tables")
    p.add_argument("--json", default=None, help="write the report here (and the plot beside it)")
    p.add_argument("--plot", default=None, help="PNG path (default: the JSON path with .png)")
    p.add_argument("--cost", action="append", default=[], metavar="MODEL=COST",
                   help="a model's cost in B active parameters (closed models default to 200; repeatable)")
    p.add_argument("--limit", type=int, default=None, help="at most this many prompts per folder (quick runs)")
    p.add_argument("--hull-range", default=None, metavar="LO,HI",
                   help="budgets over which the worst gap to the singles' hull is reported (e.g. 8,70)")
    p.add_argument("--data", default=None, help="dataset folder (sets COE_DATA_DIR)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from eval.outcomes import run_outcomes_eval
    from routers.train.outcome_table import parse_costs

    if args.data:
        os.environ["COE_DATA_DIR"] = args.data
    if args.cv is not None and args.cv < 2:
        raise ValueError("--cv needs K >= 2")
    hull_range = None
    if args.hull_range:
        lo, _, hi = args.hull_range.partition(",")
        hull_range = (float(lo), float(hi))
    run_outcomes_eval(args.train, args.test, args.cv, args.json, args.plot, parse_costs(args.cost), args.limit,
                      hull_range)
    return 0
