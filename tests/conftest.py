"""Shared fixtures: the real Serve app on the default config, started once per test session."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def default_config():
    from coe.config import load_config

    return load_config(ROOT / "configs" / "default.yaml")


@pytest.fixture(scope="session")
def served(default_config):
    """Base URL of the real coe app (Ray Serve, three real experts) on a free loopback port."""
    from coe.serve.runner import run_app, shutdown

    cfg = default_config.model_copy(deep=True)
    cfg.server.port = free_port()
    # Logical CPUs are placement only: side apps (reliability, GLIDER, tiered) run beside the default one, and
    # with the default's 4 their replicas would wait for CPUs forever on a 2-core machine.
    cfg.ray.num_cpus = 32
    url = run_app(cfg)
    yield url
    shutdown()


def deploy_side_app(cfg, base_url: str, timeout_s: float = 600) -> str:
    """Deploy a second app on the session's Ray and proxy (route prefix cfg.ray.route_prefix); wait for /health.

    Fails with the app's Serve status instead of hanging when it cannot start (Serve's own wait has no limit).
    """
    from ray import serve

    from coe.serve.app import build_from_config
    from coe.serve.runner import answers_200

    name, prefix = cfg.ray.app_name, cfg.ray.route_prefix
    serve._run(build_from_config(cfg), name=name, route_prefix=prefix, _blocking=False)
    url = f"{base_url}{prefix}"
    if answers_200(f"{url}/health", timeout_s):
        return url
    status = serve.status().applications.get(name)
    serve.delete(name)
    raise TimeoutError(f"side app {name!r} not healthy within {timeout_s:.0f} s: {status}")


@pytest.fixture(scope="session")
def deploy_side(served):
    """deploy_side(cfg) -> base URL of a side app on the session's Ray (see deploy_side_app)."""
    return lambda cfg: deploy_side_app(cfg, served)
