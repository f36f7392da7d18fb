"""Cluster benchmark: routed chat requests/s with 1 vs 2 replicas per expert on a local two-node Ray cluster,
and the time from `serve deploy` to the first successful request.

Both nodes are processes on this machine: they share its cores, so more replicas only add throughput where the
machine has idle cores; the figures show the mechanics (placement, scaling, start-up), not cluster speed-ups.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from eval.local_cluster import (
    NodeSpec,
    free_port,
    serve_deploy,
    serve_shutdown,
    small_serve_config,
    start_cluster,
    wait_running,
)

PROMPTS = ["Write a Python function that reverses a list", "What is the derivative of x squared?",
           "Hi there! How are you doing today?", "Name three rivers in Europe.",
           "Explain the causes of the French Revolution.", "Sort these numbers: 5, 2, 9"]


def chat(url: str, prompt: str, max_tokens: int) -> tuple[int, str]:
    try:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
            "model": "coe", "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]})
        return r.status_code, r.headers.get("x-coe-expert", "")
    except httpx.HTTPError:
        return 0, ""


def first_success(url: str, t0: float, timeout_s: float) -> float:
    """Seconds from t0 until a routed chat request answers 200."""
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        if chat(url, "Hi!", 4)[0] == 200:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise TimeoutError(f"no successful request within {timeout_s:.0f} s")


def throughput(url: str, requests: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(lambda i: chat(url, PROMPTS[i % len(PROMPTS)], max_tokens), range(requests)))
    wall = time.monotonic() - t0
    ok = sum(1 for s, _ in out if s == 200)
    return {"requests": requests, "ok": ok, "wall_s": round(wall, 2), "rps": round(ok / wall, 3),
            "experts": sorted({e for _, e in out if e})}


def run(replica_counts: list[int], requests: int, concurrency: int, max_tokens: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="coe-bench-cluster-"))
    cluster = start_cluster(NodeSpec(num_cpus=2), [NodeSpec(num_cpus=2, resources={"expert_node": 8})])
    rows = []
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        for i, n in enumerate(replica_counts):
            if i:
                serve_shutdown(cluster)  # each count starts from no app: deploy time is a cold start
            config = small_serve_config(port, replicas={"smollm2-135m": n, "gemma3-270m": n})
            t0 = time.monotonic()
            serve_deploy(cluster, config, folder / f"serve-{n}.yaml")
            wait_running(cluster.dashboard_url, timeout_s=900)
            ready_s = first_success(url, t0, 900)
            chat(url, PROMPTS[0], max_tokens)  # warm both paths once
            rows.append({"replicas_per_expert": n, "deploy_to_first_ok_s": round(ready_s, 1),
                         **throughput(url, requests, concurrency, max_tokens)})
    finally:
        cluster.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    p.add_argument("--requests", type=int, default=24)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows = run(args.replicas, args.requests, args.concurrency, args.max_tokens)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="coe on a local two-node Ray cluster (both nodes share this machine's cores)")
    for col in ("replicas/expert", "deploy → first OK (s)", "requests ok", "wall (s)", "routed req/s", "experts"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["replicas_per_expert"]), str(r["deploy_to_first_ok_s"]), f"{r['ok']}/{r['requests']}",
                      str(r["wall_s"]), str(r["rps"]), ", ".join(r["experts"]))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
