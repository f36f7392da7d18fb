"""Serving benchmark of `POST /v1/retrieve`: latency and queries/s at several concurrencies, and routing's share.

Single-query requests with real test queries of a corpus, through the real app on loopback (HTTP, gateway,
retriever deployment with request batching). The routing overhead is the router's own time as the retriever
reports it (`timings_ms.route_ms`), and the end-to-end cost of routing is the p50 of routed requests minus that of
the same queries sent to one named expert. The serving overhead is what the end-to-end latency adds to the
retriever's own route + encode + search time (HTTP, the gateway, two Ray Serve hops, request batching). Where the
gateway sends `Server-Timing` (coe/api/timing.py), each run also splits the latency into the HTTP proxy (round trip
minus the gateway app's time), the gateway's call to the retriever, and the gateway's own rest.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from coe.api.timing import parse_server_timing
from coe.config import CoeConfig
from eval.stats import percentile_ms, print_table, write_json


@dataclass
class Samples:
    """Latencies (s) of successful requests, the retriever's route_ms and route+encode+search ms of each, and
    the failures."""

    latency_s: list[float] = field(default_factory=list)
    route_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    phases_ms: dict[str, list[float]] = field(default_factory=dict)  # proxy, retriever_call, gateway_rest
    errors: int = 0
    wall_s: float = 0.0


async def _drive(url: str, corpus: str, queries: list[str], concurrency: int, expert: str | None,
                 top_k: int) -> Samples:
    out = Samples()
    todo = iter(queries)

    async def client(http: httpx.AsyncClient) -> None:
        for query in todo:
            body: dict[str, Any] = {"corpus": corpus, "query": query, "top_k": top_k}
            if expert:
                body["expert"] = expert
            t0 = time.perf_counter()
            r = await http.post(f"{url}/v1/retrieve", json=body)
            if r.status_code != 200:
                out.errors += 1
                continue
            latency = time.perf_counter() - t0
            out.latency_s.append(latency)
            for name, ms in split_latency(r.headers.get("server-timing", ""), latency).items():
                out.phases_ms.setdefault(name, []).append(ms)
            timings = r.json()["data"][0]["timings_ms"]
            out.route_ms.append(float(timings.get("route_ms", 0.0)))
            out.service_ms.append(float(sum(timings.values())))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        out.wall_s = time.perf_counter() - t0
    return out


def split_latency(server_timing: str, latency_s: float) -> dict[str, float]:
    """One request's milliseconds outside the gateway app (proxy), in its retriever call and in the rest of the
    gateway; empty when the gateway sends no Server-Timing (older code)."""
    ms = parse_server_timing(server_timing)
    if "app" not in ms or "retriever" not in ms:
        return {}
    return {"proxy": latency_s * 1000 - ms["app"], "retriever_call": ms["retriever"],
            "gateway_rest": ms["app"] - ms["retriever"]}


async def _floor(url: str, n: int) -> list[float]:
    """Latencies (s) of `GET /v1/corpora`: the same HTTP + gateway + retriever hops with no model work."""
    out = []
    async with httpx.AsyncClient(timeout=60) as http:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await http.get(f"{url}/v1/corpora")
            if r.status_code == 200:
                out.append(time.perf_counter() - t0)
    return out


def _row(samples: Samples) -> dict[str, float]:
    return {"p50_ms": round(percentile_ms(samples.latency_s, 50), 2),
            "p99_ms": round(percentile_ms(samples.latency_s, 99), 2),
            "qps": round(len(samples.latency_s) / samples.wall_s, 1),
            "route_ms_p50": round(float(np.median(samples.route_ms)), 2),
            "service_ms_p50": round(float(np.median(samples.service_ms)), 2), "errors": samples.errors,
            **{f"{name}_ms_p50": round(float(np.median(v)), 2) for name, v in samples.phases_ms.items()}}


def run(cfg: CoeConfig, corpus: str = "scifact", n_queries: int = 300, concurrencies: tuple[int, ...] = (1, 16),
        expert: str | None = None, top_k: int = 10, json_path: str | None = None) -> dict[str, Any]:
    """Start the app, warm it up, measure routed and direct requests at each concurrency; prints a table."""
    from coe.serve.runner import run_app, shutdown
    from experts.embed.beir import load_split

    if cfg.retrieval is None or corpus not in cfg.retrieval.corpora:
        raise ValueError(f"corpus {corpus!r} is not in the config's `retrieval.corpora`")
    split = load_split(cfg.retrieval.corpora[corpus].folder(), "test", name=corpus)
    queries = [split.queries[q] for q in sorted(split.queries)]
    queries = (queries * (n_queries // len(queries) + 1))[:n_queries]
    direct = expert or next(iter(cfg.retrieval.experts), "base")
    cfg.server.host = "127.0.0.1"
    cfg.reliability.rate_limit.requests_per_s = None  # one client address sends everything: measure serving, not 429s
    url = run_app(cfg)
    results: dict[str, Any] = {"corpus": corpus, "queries": n_queries, "direct_expert": direct, "runs": {}}
    try:
        asyncio.run(_drive(url, corpus, queries[:32], 4, None, top_k))  # warm-up
        floor = asyncio.run(_floor(url, 100))
        results["serving_floor_p50_ms"] = round(percentile_ms(floor, 50), 2)
        for c in concurrencies:
            for mode, named in (("routed", None), ("direct", direct)):
                results["runs"][f"{mode}_c{c}"] = _row(asyncio.run(_drive(url, corpus, queries, c, named, top_k)))
    finally:
        shutdown()
    for c in concurrencies:
        runs = results["runs"]
        runs[f"routing_cost_c{c}_ms"] = round(runs[f"routed_c{c}"]["p50_ms"] - runs[f"direct_c{c}"]["p50_ms"], 2)
    rows = [[name, r["p50_ms"], r["p99_ms"], r["qps"], r["route_ms_p50"], r["service_ms_p50"], r["errors"]]
            for name, r in results["runs"].items() if isinstance(r, dict)]
    print_table(f"coe bench retrieve: {corpus}, {n_queries} single-query requests per run",
                ["run", "p50 ms", "p99 ms", "queries/s", "route_ms p50", "route+encode+search p50", "errors"],
                rows)
    print(f"serving floor (GET /v1/corpora, same hops, no model work): p50 {results['serving_floor_p50_ms']} ms")
    split = [[name, r.get("proxy_ms_p50"), r.get("retriever_call_ms_p50"), r.get("gateway_rest_ms_p50")]
             for name, r in results["runs"].items() if isinstance(r, dict) and "proxy_ms_p50" in r]
    if split:
        print_table("where a request's time goes (p50 of each part, ms)",
                    ["run", "HTTP proxy", "gateway -> retriever call", "gateway, the rest"], split)
    write_json(json_path, results)
    return results
