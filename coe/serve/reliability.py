"""Auth and rate limits of the gateway: the keys read where the app is built (the driver), and what one replica
passes to its app factory (coe/api/app.py `create_app`)."""

from __future__ import annotations

import logging

from coe.api.auth import KeyStore, check_bind, load_keys
from coe.api.limits import RateLimiter
from coe.config import CoeConfig
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


def replica_guards(cfg: CoeConfig, auth: list[dict[str, str]] | None) -> tuple[KeyStore, RateLimiter]:
    """A gateway replica's KeyStore (from the salted hashes the driver sent) and rate limiter; logs how auth
    stands (a warning when it is off)."""
    keys = KeyStore.from_data(auth)
    line = check_bind(keys, cfg.server.host)
    (log.info if keys.enabled else log.warning)(line)
    limit = cfg.reliability.rate_limit
    return keys, RateLimiter(limit.requests_per_s, limit.burst)
