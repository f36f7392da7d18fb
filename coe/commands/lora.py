"""`coe compress-adapter PATH --density D` (ComPEFT) and `coe bench lora` (many adapters on one base)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys


def register(sub, groups) -> None:  # noqa: ANN001
    from experts.lora.artifact import DEFAULT_DENSITY

    p = sub.add_parser("compress-adapter", help="ComPEFT: keep the top-D entries of each LoRA matrix as signs x scale")
    p.add_argument("path", help="a LoRA expert folder (coe train lora-expert)")
    p.add_argument("--density", type=float, default=DEFAULT_DENSITY, help="share of entries kept per matrix")
    p.add_argument("--no-quantize", action="store_true", help="keep the kept values (exact at density 1)")
    p.add_argument("--out", default=None, help="default: PATH-compeft-D")
    p.set_defaults(func=run_compress)

    p = groups["bench"].add_parser("lora", help="hundreds of LoRA adapters on one base: tiers, ComPEFT, mixed batches")
    p.add_argument("--json", default=None)
    p.add_argument("--adapters", type=int, default=200)
    p.add_argument("--requests", type=int, default=200, help="Zipf requests after one request per adapter")
    p.add_argument("--max-loras", type=int, default=8, help="device slots")
    p.add_argument("--max-cpu-loras", type=int, default=16, help="host copies")
    p.add_argument("--density", type=float, default=0.0,
                   help="of the compressed adapters; 0: the smallest of --densities within the accuracy goals")
    p.add_argument("--densities", default="0.1,0.3,0.5", help="densities the accuracy sweep measures")
    p.add_argument("--eval-items", type=int, default=40, help="items per task for the accuracy delta (0: skip)")
    p.add_argument("--workdir", default=None, help="where the random adapters are written (default: a temp dir)")
    p.set_defaults(func=run_bench)


def run_compress(args: argparse.Namespace) -> int:
    from experts.embed.adapters import AdapterError
    from experts.lora.artifact import compress_expert

    out = args.out or f"{str(args.path).rstrip('/')}-compeft-{args.density:g}"
    command = "coe " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        report = compress_expert(args.path, out, density=args.density, quantize=not args.no_quantize,
                                 command=command)
    except AdapterError as err:
        print(f"coe: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from eval.bench_lora import BenchLoraConfig, run

    run(BenchLoraConfig(adapters=args.adapters, requests=args.requests, max_loras=args.max_loras,
                        max_cpu_loras=args.max_cpu_loras, density=args.density, eval_items=args.eval_items,
                        densities=tuple(float(d) for d in args.densities.split(",")),
                        workdir=args.workdir), json_path=args.json)
    return 0
