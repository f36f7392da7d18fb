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
    url = run_app(cfg)
    yield url
    shutdown()
