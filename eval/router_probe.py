"""`python -m eval.router_probe --router ENCODER=ARTIFACT ...`: hand-written chat prompts, one clear category each.

The routers are trained and chosen on MMLU questions (and a few MT-Bench prompts); users send short free-form chat.
This probe is the check a held-out MMLU split cannot make: does a router still put "Who was the first emperor of
Rome?" under history? Nine prompts are not a benchmark; they catch a router that learned MMLU's surface instead of
the topic (they are written here, not taken from any dataset).
"""

from __future__ import annotations

import argparse

from coe.config import load_config
from eval.stats import print_table, write_json
from routers.base import RouteInput

PROBES: list[tuple[str, str]] = [
    ("Who was the first emperor of Rome and how did he come to power after the civil wars?", "history"),
    ("Which events led to the fall of the Western Roman Empire in the fifth century?", "history"),
    ("What were the main causes of the French Revolution of 1789?", "history"),
    ("Who was the first emperor of Rome?", "history"),
    ("In which year did the Battle of Hastings take place, and who won it?", "history"),
    ("Describe the causes and consequences of the Thirty Years' War in seventeenth-century Europe.", "history"),
    ("What is the derivative of x squared times sine of x?", "math"),
    ("Why do cells need mitochondria?", "biology"),
    ("Write a short poem about autumn leaves.", "writing"),
]


def probe(encoder: str, artifact: str, config: str = "configs/default.yaml") -> dict:
    from coe.serve.routing import build_router

    cfg = load_config(config)
    cfg.router.encoder, cfg.router.artifact = encoder, artifact  # type: ignore[assignment]
    router = build_router(cfg)
    got = [d.category for d in router.route([RouteInput(text=p) for p, _ in PROBES])]
    return {"encoder": encoder, "artifact": artifact, "categories": got,
            "correct": sum(g == want for g, (_, want) in zip(got, PROBES, strict=True)), "n": len(PROBES)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--router", action="append", required=True, metavar="ENCODER=ARTIFACT")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    results = [probe(*r.split("=", 1), config=args.config) for r in args.router]
    rows = [[r["encoder"], f"{r['correct']}/{r['n']}", " ".join(str(c) for c in r["categories"])] for r in results]
    print_table("router probe: hand-written chat prompts", ["encoder", "correct", "categories"], rows)
    write_json(args.json, {"probes": PROBES, "results": results})


if __name__ == "__main__":
    main()
