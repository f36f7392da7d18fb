"""Load benchmark: C concurrent clients for N seconds against the served app on loopback.

A mix of routed chat (streaming and not, small max_tokens), retrieval when the app has `/v1/retrieve`, and 10%
bad requests. It counts statuses and timeouts, checks that every accepted request got a complete answer
(JSON with choices, or a stream that ended with [DONE]), and measures the RSS of every Ray process at the
start and the end (growth ratio), so queues that grow without bound show up as memory growth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from coe.config import CoeConfig

log = logging.getLogger(__name__)

PROMPTS = [
    "Write a Python function that reverses a list",
    "What is the derivative of x squared?",
    "Who was the first emperor of Rome?",
    "Hi there! How are you today?",
    "Explain what a balance sheet is.",
    "Name three rivers in Europe.",
    "What causes the seasons on Earth?",
    "Summarise the plot of Hamlet in one sentence.",
]
BAD = [
    ("malformed json", b'{"model": "coe", "messages": ['),
    ("unknown model", {"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}),
    ("empty messages", {"model": "coe", "messages": []}),
    ("max_tokens zero", {"model": "coe", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
    ("wrong type", {"model": "coe", "messages": [{"role": "user", "content": 5}]}),
]


@dataclass
class Outcome:
    kind: str
    status: int  # 0: timed out or transport error
    latency_s: float
    complete: bool
    timeout: bool = False


def ray_processes(root_pid: int | None = None) -> list[psutil.Process]:
    """Ray's processes: the descendants of the driver that started the local Ray (gcs, raylet, workers)."""
    root = psutil.Process(root_pid or os.getpid())
    return [p for p in root.children(recursive=True) if p.is_running()]


def total_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def retrieval_body(corpora: list[dict[str, Any]], text: str) -> dict[str, Any] | None:
    """A /v1/retrieve request on the first corpus the app reports as available (None: the app has none)."""
    available = [c["name"] for c in corpora if c.get("available", True)]
    return {"corpus": available[0], "query": text, "top_k": 5} if available else None


class LoadRun:
    """The request mix and the per-request checks."""

    def __init__(self, url: str, headers: dict[str, str], max_tokens: int, timeout_s: float,
                 retrieve: dict[str, Any] | None, seed: int) -> None:
        self.url, self.headers, self.max_tokens, self.timeout_s = url, headers, max_tokens, timeout_s
        self.retrieve = retrieve
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []

    def pick(self) -> str:
        r = self.rng.random()
        if r < 0.10:
            return "bad"
        if self.retrieve is not None and r < 0.28:
            return "retrieve"
        return "stream" if r < 0.64 else "chat"

    async def one(self, client: httpx.AsyncClient) -> Outcome:
        kind = self.pick()
        prompt = self.rng.choice(PROMPTS)
        t0 = time.perf_counter()
        try:
            if kind == "bad":
                _, body = self.rng.choice(BAD)
                kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) \
                    else {"json": body}
                r = await client.post("/v1/chat/completions", **kw)
                return Outcome(kind, r.status_code, time.perf_counter() - t0, "error" in r.json())
            if kind == "retrieve":
                r = await client.post("/v1/retrieve", json=self.retrieve | {"query": prompt})
                ok = r.status_code == 200 and bool(r.json()["data"][0]["results"])
                return Outcome(kind, r.status_code, time.perf_counter() - t0, ok)
            body = {"model": "coe", "max_tokens": self.max_tokens, "stream": kind == "stream",
                    "messages": [{"role": "user", "content": prompt}]}
            if kind == "chat":
                r = await client.post("/v1/chat/completions", json=body)
                ok = r.status_code == 200 and bool(r.json().get("choices"))
                return Outcome(kind, r.status_code, time.perf_counter() - t0, ok)
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                last = ""
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        last = line
                done = last == "data: [DONE]"
                return Outcome(kind, r.status_code, time.perf_counter() - t0, done)
        except httpx.TimeoutException:
            return Outcome(kind, 0, time.perf_counter() - t0, False, timeout=True)
        except (httpx.HTTPError, ValueError) as err:
            log.warning("request failed", extra={"kind": kind, "error": type(err).__name__})
            return Outcome(kind, 0, time.perf_counter() - t0, False)

    async def run(self, duration_s: float, concurrency: int, progress: Any = None) -> None:
        end = time.monotonic() + duration_s
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=self.timeout_s,
                                     limits=limits) as client:
            async def worker() -> None:
                while time.monotonic() < end:
                    self.outcomes.append(await self.one(client))
                    if progress is not None:
                        progress()

            await asyncio.gather(*(worker() for _ in range(concurrency)))


def summarise(outcomes: list[Outcome], rss_start: int, rss_end: int, duration_s: float) -> dict[str, Any]:
    accepted = [o for o in outcomes if 200 <= o.status < 300]
    lat = np.array([o.latency_s for o in accepted]) * 1000 if accepted else np.array([np.nan])
    by_kind: dict[str, int] = {}
    by_status: dict[str, int] = {}  # what the 4xx were: the bad requests' 400s, 429s of full queues, ...
    for o in outcomes:
        by_kind[o.kind] = by_kind.get(o.kind, 0) + 1
        by_status[str(o.status)] = by_status.get(str(o.status), 0) + 1
    return {
        "sent": len(outcomes),
        "status_2xx": len(accepted),
        "status_4xx": sum(400 <= o.status < 500 for o in outcomes),
        "status_5xx": sum(o.status >= 500 for o in outcomes),
        "timeouts": sum(o.timeout for o in outcomes),
        "lost": sum(not o.complete for o in accepted),
        "bad_requests_answered_4xx": sum(o.kind == "bad" and 400 <= o.status < 500 for o in outcomes),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "throughput_rps": round(len(accepted) / duration_s, 2),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_ratio": round(rss_end / rss_start, 3) if rss_start else None,
        "by_kind": by_kind,
        "by_status": dict(sorted(by_status.items())),
        "duration_s": duration_s,
    }


def run(cfg: CoeConfig, duration_s: float = 120, concurrency: int = 32, json_path: str | None = None,
        max_tokens: int = 8, seed: int = 0) -> dict[str, Any]:
    """Start the app on loopback, warm it up, load it, print a table; returns the figures."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from coe.serve.runner import run_app, shutdown

    cfg.server.host = "127.0.0.1"
    url = run_app(cfg)
    try:
        keys = [k for k in os.environ.get(cfg.auth.keys_env, "").split(",") if k.strip()]
        headers = {"Authorization": f"Bearer {keys[0].strip()}"} if keys else {}
        r = httpx.get(f"{url}/v1/corpora", headers=headers, timeout=30)
        corpora = r.json()["data"] if r.status_code == 200 else []
        load = LoadRun(url, headers, max_tokens, cfg.server.request_timeout_s + 30,
                       retrieval_body(corpora, PROMPTS[0]), seed)
        asyncio.run(load.run(5, 2))  # warm-up: every expert and the router have run once
        procs = ray_processes()
        rss_start = total_rss(procs)
        load.outcomes.clear()
        with Progress(transient=True) as bar:
            task = bar.add_task(f"{concurrency} clients, {duration_s:.0f} s", total=None)
            t0 = time.monotonic()
            asyncio.run(load.run(duration_s, concurrency, lambda: bar.advance(task)))
            elapsed = time.monotonic() - t0
        time.sleep(2)
        rss_end = total_rss(ray_processes())
        figures = summarise(load.outcomes, rss_start, rss_end, elapsed)
        figures |= {"concurrency": concurrency, "max_tokens": max_tokens, "ray_processes": len(procs),
                    "retrieval": load.retrieve is not None}
    finally:
        shutdown()
    table = Table(title=f"coe bench load: {concurrency} clients, {elapsed:.0f} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    Console().print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
