"""vLLM backend on this machine: engine start time, one-stream and concurrent decode throughput.

Run: python -m eval.bench_vllm_cpu --model /path/to/smollm2-hf [--modes eager,compiled] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from eval.stats import print_table, write_json
from experts.llm.base import GenerationRequest, Message

PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a steam engine works.",
    "Describe a day in the life of a medieval blacksmith.",
    "Write a long letter to a friend about your travels in Japan.",
]


def default_model() -> str:
    if os.environ.get("COE_TEST_SMOLLM2_DIR"):
        return os.environ["COE_TEST_SMOLLM2_DIR"]
    from experts.llm.registry_models import resolve_model

    return resolve_model("registry:smollm2-135m-instruct")


async def run_one(backend: Any, prompt: str, max_tokens: int) -> tuple[int, float, float]:
    """(completion tokens, seconds to first text, total seconds) for one streamed request."""
    req = GenerationRequest(messages=(Message("user", prompt),), max_tokens=max_tokens)
    t0 = time.perf_counter()
    first = None
    tokens = 0
    async for chunk in backend.generate(req):
        if first is None and chunk.text:
            first = time.perf_counter() - t0
        tokens = chunk.completion_tokens or tokens
    return tokens, first or 0.0, time.perf_counter() - t0


async def bench_mode(model: str, eager: bool, max_tokens: int, concurrency: int) -> dict[str, float]:
    from experts.llm.vllm_backend import VLLMBackend

    backend = VLLMBackend("bench", model, enforce_eager=eager)
    t0 = time.perf_counter()
    await backend.start()
    start_s = time.perf_counter() - t0
    try:
        await run_one(backend, "Hello", 8)  # warm-up
        tokens, ttft, total = await run_one(backend, PROMPTS[0], max_tokens)
        t1 = time.perf_counter()
        results = await asyncio.gather(*(run_one(backend, PROMPTS[i % len(PROMPTS)], max_tokens)
                                         for i in range(concurrency)))
        wall = time.perf_counter() - t1
    finally:
        await backend.shutdown()
    n_conc = sum(r[0] for r in results)
    return {
        "start_s": start_s, "single_tokens": tokens, "single_ttft_s": ttft, "single_tok_s": tokens / total,
        "concurrent_tokens": n_conc, "concurrent_tok_s": n_conc / wall,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="local HF folder (default: registry SmolLM2-135M-Instruct)")
    ap.add_argument("--modes", default="eager,compiled", help="comma list of eager, compiled")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    model = args.model or default_model()
    out: dict[str, dict[str, float]] = {}
    for mode in args.modes.split(","):
        out[mode] = asyncio.run(bench_mode(model, mode == "eager", args.max_tokens, args.concurrency))
    rows = [[mode, r["start_s"], int(r["single_tokens"]), r["single_ttft_s"] * 1000, r["single_tok_s"],
             int(r["concurrent_tokens"]), r["concurrent_tok_s"]] for mode, r in out.items()]
    cols = ["mode", "start s", "tokens (1)", "TTFT ms (1)", "tok/s (1)", f"tokens ({args.concurrency})",
            f"agg tok/s ({args.concurrency})"]
    print_table(f"vLLM backend on CPU ({os.cpu_count()} cores): {model}", cols, rows)
    write_json(args.json, {"model": model, "max_tokens": args.max_tokens, "results": out})
    return out


if __name__ == "__main__":
    main()
