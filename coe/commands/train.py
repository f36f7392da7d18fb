"""`coe train coe-router` (from k-shot expert scores, or with --outcomes from a recorded outcome table) and
`coe train per-prompt-router --outcomes`."""

from __future__ import annotations

import argparse
import shlex
import sys


def _command() -> str:
    return "coe " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _outcome_flags(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--outcomes", default=None, required=required,
                   help="outcome table folder(s), comma-separated (prompts.jsonl, scores.csv, models.json; a bare "
                        "name is looked up under COE_DATA_DIR/outcomes)")
    p.add_argument("--budget", type=float, default=None,
                   help="average cost per prompt the router may spend (B active parameters); default: no limit")
    p.add_argument("--cost", action="append", default=[], metavar="MODEL=COST",
                   help="a model's cost (needed for closed models; repeatable)")


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["train"].add_parser("coe-router", help="train the category classifier and expert map")
    p.add_argument("--config", default="configs/train/coe.yaml")
    p.add_argument("--out", default="artifacts/coe-router")
    p.add_argument("--limit", type=int, default=None, help="questions per subject (quick runs)")
    p.add_argument("--prior-map", action="store_true",
                   help="keep the config's category_map: skip scoring the experts (minutes instead of an hour cold)")
    p.add_argument("--encoder", default=None,
                   help="prompt encoder ref (registry:/onnx:/onnx-int8:/model2vec:<name>; default: the config's)")
    p.add_argument("--map-from", default=None, metavar="ARTIFACT",
                   help="take the category map of this coe-router artifact (no expert scoring; τ by the 0/1 rule)")
    _outcome_flags(p, required=False)
    p.set_defaults(func=run_coe_router)

    p = groups["train"].add_parser("per-prompt-router",
                                   help="train the per-prompt (nearest-neighbour outcome) router on outcome tables")
    p.add_argument("--out", default="artifacts/per-prompt-router")
    _outcome_flags(p, required=True)
    p.set_defaults(func=run_per_prompt_router)


def run_coe_router(args: argparse.Namespace) -> int:
    if args.outcomes:
        from eval.outcomes import resolve_folders
        from routers.train.outcome_table import parse_costs
        from routers.train.outcome_train import train_coe_from_outcomes

        report = train_coe_from_outcomes(resolve_folders(args.outcomes), args.out, args.budget,
                                         parse_costs(args.cost), command=_command())
        print(f"router artifact written to {args.out}: map {report['category_map']}, general "
              f"{report['general_model']}, training-mix cost {report['train_avg_cost']:.2f}")
        return 0
    from routers.train.coe_router import train_coe_router

    command = f"coe train coe-router --config {args.config} --out {args.out}"
    if args.limit:
        command += f" --limit {args.limit}"
    if args.prior_map:
        command += " --prior-map"
    if args.encoder:
        command += f" --encoder {args.encoder}"
    if args.map_from:
        command += f" --map-from {args.map_from}"
    report = train_coe_router(args.config, args.out, limit=args.limit, command=command,
                              fit_map=not (args.prior_map or args.map_from), encoder_ref=args.encoder,
                              map_from=args.map_from)
    print(f"router artifact written to {args.out} (report: {args.out}/report.md)")
    return 0 if report else 1


def run_per_prompt_router(args: argparse.Namespace) -> int:
    from eval.outcomes import resolve_folders
    from routers.train.outcome_table import parse_costs
    from routers.train.outcome_train import train_per_prompt_from_outcomes

    report = train_per_prompt_from_outcomes(resolve_folders(args.outcomes), args.out, args.budget,
                                            parse_costs(args.cost), command=_command())
    print(f"per-prompt router written to {args.out}: k={report['k']}, shrinkage={report['shrinkage']}, "
          f"prior α={report['prior_alpha']}, λ={report['cost_penalty']:.4g}")
    return 0
