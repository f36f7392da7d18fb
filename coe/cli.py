"""`coe` command line: serve · setup · train · index · eval · bench · chat · data."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module registers its subcommands; `groups` holds the shared `train`/`eval`/`bench` sub-parsers.
COMMAND_MODULES = [
    "coe.commands.serve",
    "coe.commands.setup",
    "coe.commands.train",
    "coe.commands.bench",
    "coe.commands.chat",
    "coe.commands.data",
    "coe.commands.routing_eval",
    "coe.commands.outcomes",
    "coe.commands.retrieval",
    "coe.commands.keys",
    "coe.commands.bench_load",
    "coe.commands.glider",
    "coe.commands.lora",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coe", description="Composition-of-Experts routing service")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)
    groups = {}
    for group, help_text in [("train", "offline training of routers and experts"),
                             ("eval", "quality evaluations"), ("bench", "performance benchmarks")]:
        p = sub.add_parser(group, help=help_text)
        groups[group] = p.add_subparsers(dest=f"{group}_command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as err:  # an optional command whose extra is not installed
            logging.getLogger(__name__).debug("command module %s unavailable: %s", name, err)
            continue
        module.register(sub, groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as err:
        print(f"coe: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
