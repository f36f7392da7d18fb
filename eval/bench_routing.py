"""`coe bench routing`: router latency alone, and the gateway's overhead over calling the expert directly.

The overhead is broken down from the gateway's `Server-Timing` header (coe/api/timing.py): `app` is the time
inside the gateway's ASGI app, split into parse (middleware, body, validation), route, prepare, expert (the
handle call) and build; what the client sees beyond `app` is the HTTP proxy (Serve's proxy actor, the hop to
the replica and back, loopback HTTP). The expert phase minus the same call made from the driver is what the
gateway's handle call costs beyond the pool's own work.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from coe.api.timing import parse_server_timing
from coe.config import CoeConfig
from eval.stats import percentile_ms, print_table, write_json
from experts.llm.base import GenerationRequest, Message
from routers.base import RouteInput

PROMPTS = [
    "Write a Python function that reverses a list",
    "What is the derivative of x^3 + 2x?",
    "Who was the first emperor of Rome?",
    "Hi! How are you doing today?",
    "Explain how vaccines train the immune system.",
    "Draft a short email asking for a deadline extension.",
    "What is the capital of Australia?",
    "Sort this list in SQL: select names ordered by age",
]


def router_latency(cfg: CoeConfig, n: int = 200, threads: int = 1) -> dict[str, float]:
    """Batch-1 routing of the fixed prompts (p50/p99 over n calls) and batch-32 routing per query, in-process."""
    from coe.serve.routing import build_router
    from experts.embed.encoders import make_encoder

    router = build_router(cfg, make_encoder(cfg.router.encoder, threads=threads))
    router.route([RouteInput(text="warm up")])
    single = []
    for i in range(n):
        t0 = time.perf_counter()
        router.route([RouteInput(text=PROMPTS[i % len(PROMPTS)])])
        single.append(time.perf_counter() - t0)
    batch = [RouteInput(text=PROMPTS[i % len(PROMPTS)] + f" ({i})") for i in range(32)]
    per_query = []
    for _ in range(max(5, n // 20)):
        t0 = time.perf_counter()
        router.route(batch)
        per_query.append((time.perf_counter() - t0) / len(batch))
    return {"route_p50_ms": percentile_ms(single, 50), "route_p99_ms": percentile_ms(single, 99),
            "route_batch32_per_query_ms": percentile_ms(per_query, 50)}


def gateway_overhead(cfg: CoeConfig, url: str, n: int = 50) -> dict[str, float]:
    """Paired: the same prompt routed over HTTP vs sent straight to the chosen expert's deployment handle."""
    from ray import serve

    handles: dict[str, Any] = {}
    diffs, routed_s, direct_s, route_s = [], [], [], []
    phases: dict[str, list[float]] = {}
    with httpx.Client(timeout=120) as client:
        for i in range(n + 2):
            prompt = PROMPTS[i % len(PROMPTS)]
            body = {"model": "coe", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1}
            t0 = time.perf_counter()
            r = client.post(f"{url}/v1/chat/completions", json=body)
            t_routed = time.perf_counter() - t0
            r.raise_for_status()
            expert = cfg.expert(r.headers["x-coe-expert"])
            if expert.pool_name not in handles:
                handles[expert.pool_name] = serve.get_deployment_handle(f"expert-{expert.pool_name}",
                                                                        cfg.ray.app_name)
            payload = GenerationRequest(messages=(Message("user", prompt),), max_tokens=1)  # what the gateway sends
            t0 = time.perf_counter()
            handles[expert.pool_name].generate.remote(expert.name, payload).result()
            t_direct = time.perf_counter() - t0
            if i >= 2:  # the first calls warm connections and handles
                routed_s.append(t_routed)
                direct_s.append(t_direct)
                diffs.append(t_routed - t_direct)
                route_s.append(float(r.headers["x-coe-route-ms"]) / 1000.0)  # routing as the gateway timed it
                for name, s in breakdown(r.headers.get("server-timing", ""), t_routed, t_direct).items():
                    phases.setdefault(name, []).append(s)
    out = {"gateway_overhead_p50_ms": percentile_ms(diffs, 50), "gateway_overhead_p99_ms": percentile_ms(diffs, 99),
           "routed_p50_ms": percentile_ms(routed_s, 50), "direct_p50_ms": percentile_ms(direct_s, 50),
           "served_route_p50_ms": percentile_ms(route_s, 50), "served_route_p99_ms": percentile_ms(route_s, 99)}
    return out | {f"phase_{name}_p50_ms": percentile_ms(s, 50) for name, s in phases.items()}


def breakdown(server_timing: str, routed_s: float, direct_s: float) -> dict[str, float]:
    """One request's phases in seconds: the gateway's own (Server-Timing), the proxy (round trip − app) and the
    handle call's cost over the driver's direct call (expert − direct); empty without the header."""
    ms = parse_server_timing(server_timing)
    if "app" not in ms:
        return {}
    out = {name: v / 1000 for name, v in ms.items()}
    out["proxy"] = routed_s - out["app"]
    if "expert" in out:
        out["expert_minus_direct"] = out["expert"] - direct_s
    return out


def with_router(cfg: CoeConfig, encoder: str, artifact: str | None) -> CoeConfig:
    """A copy of the config whose router uses `encoder` (and `artifact`, when given)."""
    router = cfg.router.model_copy(update={"encoder": encoder} | ({"artifact": Path(artifact)} if artifact else {}))
    return cfg.model_copy(update={"router": router})


def run_router_only(cfg: CoeConfig, encoders: list[str], artifacts: list[str], threads: list[int],
                    json_path: str | None = None, n_router: int = 200) -> dict[str, Any]:
    """Router-alone latency of each (encoder, artifact) pair at each ORT intra-op thread count, one run."""
    if artifacts and len(artifacts) != len(encoders):
        raise ValueError(f"--artifact given {len(artifacts)} times for {len(encoders)} --encoder values")
    paths: list[str | None] = list(artifacts) if artifacts else [None] * len(encoders)
    pairs = list(zip(encoders, paths, strict=True)) or [(cfg.router.encoder, None)]
    rows = []
    for encoder, artifact in pairs:
        variant = with_router(cfg, encoder, artifact)
        for t in threads if encoder.startswith("onnx") else threads[:1]:
            rows.append({"encoder": encoder, "artifact": str(variant.router.artifact), "threads": t}
                        | router_latency(variant, n_router, t))
    cols = ["encoder", "threads", "route_p50_ms", "route_p99_ms", "route_batch32_per_query_ms"]
    print_table("coe bench routing --router-only (ms)", cols, [[r[c] for c in cols] for r in rows])
    write_json(json_path, {"repeats": n_router, "results": rows})
    return {"results": rows}


def run(cfg: CoeConfig, json_path: str | None = None, n_router: int = 200, n_gateway: int = 50,
        ingress_url: str | None = None) -> dict:
    """`ingress_url`: where the routed requests go instead of the proxy's URL (Ray Serve's direct ingress, where
    the gateway replica itself listens: `RAY_SERVE_ENABLE_DIRECT_INGRESS=1`)."""
    from coe.serve.runner import run_app, shutdown

    results = router_latency(cfg, n_router)
    url = run_app(cfg)
    try:
        results |= gateway_overhead(cfg, ingress_url.rstrip("/") if ingress_url else url, n_gateway)
    finally:
        shutdown()
    rows = [[k, v] for k, v in results.items()]
    print_table("coe bench routing (ms)", ["metric", "value"], rows)
    write_json(json_path, {"encoder": cfg.router.encoder, "artifact": str(cfg.router.artifact),
                           "ingress_url": ingress_url or url} | results)
    return results
