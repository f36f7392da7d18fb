"""Wires auth, rate limits, admin routes and the fallback caller into a gateway replica (one call, so the
gateway itself only carries a small hook)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from coe.api.auth import KeyStore, check_bind, load_keys
from coe.api.limits import RateLimiter
from coe.config import CoeConfig
from coe.serve.fallback import ExpertCaller
from experts.paths import repo_path

log = logging.getLogger(__name__)


def keys_for(cfg: CoeConfig) -> KeyStore:
    """The configured keys, read where the app is built (the driver), so plain keys never travel."""
    keys_file = repo_path(cfg.auth.keys_file) if cfg.auth.keys_file else None  # on a node: the checkout's
    return load_keys(keys_file, cfg.auth.keys_env, cfg.auth.admin_keys_env)


def checked_keys(cfg: CoeConfig) -> KeyStore:
    """The keys for the gateway; raises when the config would serve off loopback without any, and logs
    (a warning when auth is off) how auth stands."""
    keys = keys_for(cfg)
    line = check_bind(keys, cfg.server.host)
    (log.info if keys.enabled else log.warning)(line)
    return keys


def auth_status(cfg: CoeConfig) -> str:
    """The start-up line about auth for the CLI."""
    return check_bind(keys_for(cfg), cfg.server.host)


def install(app: FastAPI, gateway: Any, auth: list[dict[str, str]] | None) -> ExpertCaller:
    """Called from Gateway.__init__: what the guard middleware and admin routes read from `app.state`."""
    cfg: CoeConfig = gateway.cfg
    keys = KeyStore.from_data(auth)
    line = check_bind(keys, cfg.server.host)
    (log.info if keys.enabled else log.warning)(line)
    app.state.keys = keys
    limit = cfg.reliability.rate_limit
    app.state.rate_limiter = RateLimiter(limit.requests_per_s, limit.burst)
    app.state.gateway = gateway
    return ExpertCaller(cfg, gateway.pools, gateway.metrics.registry)
