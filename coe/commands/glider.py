"""`coe train glider`, `coe train lora-expert`, `coe eval glider`: GLIDER at request level and token level."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _command() -> str:
    return "coe " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def register(sub, groups) -> None:  # noqa: ANN001
    p = groups["train"].add_parser("glider", help="GLIDER: task instructions per expert (request level), or with "
                                   "--token the gates and instructions of LoRA experts (MoErging)")
    p.add_argument("--config", default="configs/train/coe.yaml", help="training recipe (MMLU subjects, split)")
    p.add_argument("--coe-artifact", default="artifacts/coe-router", help="its map picks experts' examples")
    p.add_argument("--writer", default="registry:qwen2.5-coder-0.5b-instruct", help="the expert that writes")
    p.add_argument("--examples", type=int, default=4, help="examples shown per expert")
    p.add_argument("--out", default=None, help="default: artifacts/glider-router (artifacts/glider-moerging with "
                   "--token)")
    p.add_argument("--token", action="store_true", help="token level: train MoErging gates over LoRA experts")
    p.add_argument("--experts", default="artifacts/lora-experts/scifact-title,artifacts/lora-experts/cisi-title,"
                   "artifacts/lora-experts/cranfield-title", help="--token: comma-separated LoRA expert folders")
    p.add_argument("--steps", type=int, default=None, help="--token: gate training steps (default: "
                   "GateTrainConfig's, 200)")
    p.add_argument("--alpha", type=float, default=10.0, help="--token: default weight of the global score")
    p.add_argument("--top-k", type=int, default=2, help="--token: default experts mixed per token")
    p.set_defaults(func=run_glider)

    p = groups["train"].add_parser("lora-expert", help="train a LoRA expert (all linear layers) on a task")
    p.add_argument("task", help="a held-in task: scifact-title, cisi-title, cranfield-title")
    p.add_argument("--base", default="registry:smollm2-135m-instruct")
    p.add_argument("--out", default=None, help="default: artifacts/lora-experts/TASK")
    # Unset flags take LoraExpertTrainConfig's defaults (150 steps of 8 at lr 2e-3), read only when training runs.
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.set_defaults(func=run_lora_expert)

    p = groups["eval"].add_parser("glider", help="held-in / held-out accuracy of base, experts, local, global, "
                                  "GLIDER and oracle; MoErging speed")
    p.add_argument("--artifact", default="artifacts/glider-moerging")
    p.add_argument("--limit", type=int, default=60, help="items per task")
    p.add_argument("--alphas", default="3,10,30", help="GLIDER alpha sweep")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None)
    p.add_argument("--speed-only", action="store_true", help="only MoErging tokens/s against the base model")
    p.add_argument("--speed-rounds", type=int, default=3, help="alternating base/MoErging timing rounds (median)")
    p.set_defaults(func=run_eval_glider)


def output_folder(args: argparse.Namespace) -> str:
    """--out, else the artifact folder of the chosen level."""
    return args.out or ("artifacts/glider-moerging" if args.token else "artifacts/glider-router")


def run_glider(args: argparse.Namespace) -> int:
    out = output_folder(args)
    if args.token:
        from experts.train.llm_gates import GateTrainConfig
        from routers.train.moerging import build_moerging

        gate_cfg = GateTrainConfig(**({} if args.steps is None else {"steps": args.steps}))
        meta = build_moerging([p for p in args.experts.split(",") if p], out, args.writer, gate_cfg, _command(),
                              alpha=args.alpha, top_k=args.top_k)
    else:
        from routers.train.glider import run

        meta = run(args.config, args.coe_artifact, args.writer, args.examples, out, _command())
    for expert, text in meta["instructions"].items():
        print(f"{expert}: {text}")
    print(f"glider artifact written to {out} (instructions editable in {out}/meta.json)")
    return 0


def run_lora_expert(args: argparse.Namespace) -> int:
    from experts.train.llm_lora import LoraExpertTrainConfig
    from routers.train.moerging import build_lora_expert

    out = args.out or f"artifacts/lora-experts/{args.task}"
    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr}
    cfg = LoraExpertTrainConfig(**{k: v for k, v in given.items() if v is not None})
    meta = build_lora_expert(args.task, out, args.base, cfg, _command())
    print(f"LoRA expert {args.task!r} written to {out}: {meta['stats']}")
    return 0


def merged_speed(path: str | None, speed: dict) -> dict:
    """A full report already at `path` keeps its accuracy keys and takes the new speed keys (re-timing the
    speed on a quiet machine must not cost the 40-minute accuracy run); otherwise the speed report alone."""
    import json

    if not path or not Path(path).is_file():
        return speed
    try:
        report = json.loads(Path(path).read_text())
    except json.JSONDecodeError:
        return speed
    if not isinstance(report, dict) or "held_in" not in report:
        return speed
    return report | {"moerging_speed_ratio": speed["moerging_speed_ratio"],
                     "tokens_per_second": speed["tokens_per_second"],
                     "speed_rounds": speed["rounds"], "speed_source": "coe eval glider --speed-only"}


def run_eval_glider(args: argparse.Namespace) -> int:
    from eval.glider import evaluate, print_table, write_plot
    from eval.stats import write_json

    if args.speed_only:
        from eval.glider import evaluate_speed

        speed = evaluate_speed(args.artifact, args.speed_rounds)
        t = speed["tokens_per_second"]
        print(f"MoErging {t['moerging']:.1f} tokens/s, base {t['base']:.1f}: ratio {speed['moerging_speed_ratio']:.2f}")
        write_json(args.json, merged_speed(args.json, speed))
        return 0
    alphas = [float(a) for a in args.alphas.split(",") if a]
    report = evaluate(args.artifact, limit=args.limit, alphas=alphas, speed_rounds=args.speed_rounds)
    print_table(report)
    write_json(args.json, report)
    if args.plot:
        write_plot(report, args.plot)
    return 0
