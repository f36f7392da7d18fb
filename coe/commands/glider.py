"""`coe train glider`: an expert LLM writes one task instruction per expert; saved as the glider-router artifact."""

from __future__ import annotations

import argparse


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["train"].add_parser("glider", help="write and embed GLIDER task instructions per expert")
    p.add_argument("--config", default="configs/train/coe.yaml", help="training recipe (MMLU subjects, split)")
    p.add_argument("--coe-artifact", default="artifacts/coe-router", help="its map picks experts' examples")
    p.add_argument("--writer", default="registry:qwen2.5-coder-0.5b-instruct", help="the expert that writes")
    p.add_argument("--examples", type=int, default=4, help="examples shown per expert")
    p.add_argument("--out", default="artifacts/glider-router")
    p.set_defaults(func=run_glider)


def run_glider(args: argparse.Namespace) -> int:
    from routers.train.glider import run

    command = (f"coe train glider --config {args.config} --coe-artifact {args.coe_artifact} "
               f"--writer {args.writer} --examples {args.examples} --out {args.out}")
    meta = run(args.config, args.coe_artifact, args.writer, args.examples, args.out, command)
    for expert, text in meta["instructions"].items():
        print(f"{expert}: {text}")
    print(f"glider artifact written to {args.out} (instructions editable in {args.out}/meta.json)")
    return 0
