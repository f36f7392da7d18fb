"""Starts (or joins) Ray, runs the coe app, waits until it answers, and shuts it down cleanly."""

from __future__ import annotations

import logging
import os
import threading
import time
from urllib.parse import urlparse

import httpx
import ray
from ray import serve
from ray.serve import RunTarget

from coe.config import CoeConfig
from coe.serve.app import build_from_config

log = logging.getLogger(__name__)
# (address, app name) when run_app joined an existing cluster: shutdown must then leave the cluster's Serve alone.
_joined: tuple[str, str] | None = None


def start_ray(cfg: CoeConfig, address: str | None = None) -> None:
    """A private local Ray unless an address is configured, so tests never attach to another Ray."""
    addr = address or cfg.ray.address
    if ray.is_initialized():
        return
    env = {"env_vars": {"COE_DATA_DIR": os.environ.get("COE_DATA_DIR", ""),
                        "COE_CACHE_DIR": os.environ.get("COE_CACHE_DIR", "")}}
    env["env_vars"] = {k: v for k, v in env["env_vars"].items() if v}
    for key, value in cfg.ray.serve_env.items():
        os.environ.setdefault(key, value)  # a local Ray's processes inherit the driver's environment
        env["env_vars"][key] = os.environ[key]
    if addr:
        ray.init(address=addr, namespace=cfg.ray.namespace, runtime_env=env, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=cfg.ray.num_cpus, namespace=cfg.ray.namespace,
                 include_dashboard=False, runtime_env=env, log_to_driver=False)


def probe_host(bind_host: str, address: str | None) -> str:
    """Where this process can reach the proxy: a ray:// head's host, else the bind address (0.0.0.0: loopback)."""
    if address and address.startswith("ray://"):
        return urlparse(address).hostname or "127.0.0.1"
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host


def run_app(cfg: CoeConfig, address: str | None = None, ready_timeout_s: float = 600,
            stop: threading.Event | None = None) -> str:
    """Deploy the app and block until it is RUNNING (every pool loaded) and /health answers; returns the base
    URL. With `stop`, also returns as soon as it is set: the gateway answers before the pools have loaded, so a
    request can be in flight during start-up, and a stop then must drain, not abort."""
    global _joined
    start_ray(cfg, address)
    _joined = (address or cfg.ray.address, cfg.ray.app_name) if (address or cfg.ray.address) else None
    serve.start(http_options={"host": cfg.server.host, "port": cfg.server.port})
    serve.run_many([RunTarget(build_from_config(cfg), name=cfg.ray.app_name, route_prefix=cfg.ray.route_prefix)],
                   wait_for_applications_running=False)
    url = f"http://{probe_host(cfg.server.host, address or cfg.ray.address)}:{cfg.server.port}"
    if wait_running(cfg.ray.app_name, f"{url}/health", ready_timeout_s, stop) or (stop and stop.is_set()):
        return url
    raise TimeoutError(f"coe did not become ready at {url} within {ready_timeout_s:.0f} s")


def wait_running(app_name: str, health_url: str, timeout_s: float, stop: threading.Event | None = None) -> bool:
    """True once the app is RUNNING and `health_url` answers 200; False when the time is up or `stop` is set;
    a failed deploy raises with Serve's message."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        app = serve.status().applications.get(app_name)
        status = str(app.status) if app is not None else ""
        if status.endswith("DEPLOY_FAILED"):
            raise RuntimeError(f"coe app {app_name!r} failed to deploy: {app.message}")  # type: ignore[union-attr]
        if status.endswith("RUNNING") and answers_200(health_url, max(0.0, deadline - time.monotonic())):
            return True
        (stop or threading.Event()).wait(0.2)
    return False


def answers_200(url: str, timeout_s: float) -> bool:
    """Poll `url` until it answers 200 (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def drain(app_name: str, timeout_s: float) -> bool:
    """Stop taking requests and let those in flight finish: deleting the app takes its route off the proxy at
    once (new requests: 404) while each replica finishes its ongoing requests before it stops (Serve's graceful
    shutdown). True when the app was gone within `timeout_s`."""
    serve.delete(app_name, _blocking=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app_name not in serve.status().applications:
            return True
        time.sleep(0.5)
    return False


def shutdown() -> None:
    """On a joined cluster only coe's application goes (other apps and Serve itself stay); a private Ray goes."""
    global _joined
    try:
        if _joined:
            serve.delete(_joined[1])
        else:
            serve.shutdown()
    finally:
        _joined = None
        ray.shutdown()
