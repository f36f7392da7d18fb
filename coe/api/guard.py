"""ASGI middleware in front of every route: API key, scope, then the caller's rate limit.

Pure ASGI rather than BaseHTTPMiddleware so streamed responses and client disconnects pass through untouched.
Its KeyStore and RateLimiter are given when the app is built (coe/api/app.py `create_app`).
"""

from __future__ import annotations

import logging
from typing import Any

from coe.api.auth import Identity, KeyStore
from coe.api.errors import CoeError, error_response
from coe.api.limits import RateLimiter

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health"})
ADMIN_PREFIXES = ("/v1/experts", "/v1/router")


def required_scope(path: str) -> str | None:
    """None for public paths; 'admin' for expert and router management; 'user' for everything else."""
    if path in PUBLIC_PATHS:
        return None
    if any(path == p or path.startswith(p + "/") for p in ADMIN_PREFIXES):
        return "admin"
    return "user"


def app_path(scope: dict[str, Any]) -> str:
    """The path below the app's route prefix (Serve passes the prefix as root_path)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class Guard:
    """Authenticates and rate-limits HTTP requests before any route (or body parsing) runs."""

    def __init__(self, app: Any, keys: KeyStore | None = None, rate_limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.keys = keys or KeyStore([])
        self.rate_limiter = rate_limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        need = required_scope(app_path(scope))
        if need is not None:
            keys, limiter = self.keys, self.rate_limiter
            try:
                identity = keys.identify(_header(scope, b"authorization"))
                keys.authorize(identity, need)
                if limiter is not None:
                    limiter.check(self.caller(identity, scope, keys.enabled))
            except CoeError as err:
                log.info("request refused", extra={"status": err.status, "code": err.code, "path": app_path(scope)})
                return await error_response(err)(scope, receive, send)
            scope.setdefault("state", {})["identity"] = identity
        return await self.app(scope, receive, send)

    @staticmethod
    def caller(identity: Identity, scope: dict[str, Any], auth_on: bool) -> str:
        if auth_on:
            return f"key:{identity.name}"
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}"
