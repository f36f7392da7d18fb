"""Starts (or joins) Ray, runs the coe app, waits until it answers, and shuts it down cleanly."""

from __future__ import annotations

import logging
import os
import time

import httpx
import ray
from ray import serve

from coe.config import CoeConfig
from coe.serve.app import build_from_config

log = logging.getLogger(__name__)


def start_ray(cfg: CoeConfig, address: str | None = None) -> None:
    """A private local Ray unless an address is configured, so tests never attach to another Ray."""
    addr = address or cfg.ray.address
    if ray.is_initialized():
        return
    env = {"env_vars": {"COE_DATA_DIR": os.environ.get("COE_DATA_DIR", ""),
                        "COE_CACHE_DIR": os.environ.get("COE_CACHE_DIR", "")}}
    env["env_vars"] = {k: v for k, v in env["env_vars"].items() if v}
    if addr:
        ray.init(address=addr, namespace=cfg.ray.namespace, runtime_env=env, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=cfg.ray.num_cpus, namespace=cfg.ray.namespace,
                 include_dashboard=False, runtime_env=env, log_to_driver=False)


def run_app(cfg: CoeConfig, address: str | None = None, ready_timeout_s: float = 600) -> str:
    """Deploy the app and block until /health answers; returns the base URL."""
    start_ray(cfg, address)
    serve.start(http_options={"host": cfg.server.host, "port": cfg.server.port})
    serve.run(build_from_config(cfg), name=cfg.ray.app_name, route_prefix=cfg.ray.route_prefix,
              blocking=False)
    url = f"http://{cfg.server.host}:{cfg.server.port}"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"coe did not become ready at {url} within {ready_timeout_s:.0f} s")


def shutdown() -> None:
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
