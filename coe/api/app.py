"""The FastAPI application factory: the gateway passes in its routes and what the middleware needs (keys, rate
limiter, body limit); errors of the one hierarchy (coe/api/errors.py) become OpenAI-shaped answers here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from coe.api.auth import KeyStore
from coe.api.errors import BadRequest, CoeError, PayloadTooLarge, error_response, for_status
from coe.api.guard import Guard
from coe.api.limits import RateLimiter
from coe.api.openapi import document_responses
from coe.api.timing import ServerTiming

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY_BYTES = 1_000_000


def describe_validation_error(err: RequestValidationError) -> tuple[str, str | None]:
    """A one-line message naming the bad field, and the field as OpenAI's `param`."""
    problems = []
    param = None
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        if e.get("type") == "json_invalid":
            return f"request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}", None
        field = ".".join(loc) or "body"
        param = param or field
        problems.append(f"{field}: {e.get('msg')}")
    return "; ".join(problems) or "invalid request", param


def too_large(limit: int, length: str | None = None) -> JSONResponse:
    what = f"request body is {length} bytes; the limit is {limit}" if length else \
        f"request body is over the limit of {limit} bytes"
    return error_response(PayloadTooLarge(what))


class BodySizeLimit:
    """Refuses bodies over the configured size (413) before they are parsed. Pure ASGI: starlette's
    BaseHTTPMiddleware runs the rest of the app in a task of its own and copies every response through a
    memory stream, a cost each request paid here."""

    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_body_bytes
        length = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > limit:
            return await too_large(limit, length)(scope, receive, send)
        if scope.get("method") in ("POST", "PUT", "PATCH") and length is None:  # chunked: count as it comes
            messages, size = [], 0
            while True:
                message = await receive()
                messages.append(message)
                size += len(message.get("body", b""))
                if size > limit:
                    return await too_large(limit)(scope, receive, send)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
            replay = iter(messages)

            async def replayed() -> dict[str, Any]:
                return next(replay, None) or await receive()

            return await self.app(scope, replayed, send)
        return await self.app(scope, receive, send)


def create_app(routes: Sequence[APIRouter] = (), *, keys: KeyStore | None = None,
               rate_limiter: RateLimiter | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The app over `routes`, with auth (`keys`; none: open), the caller's rate limit and the body size limit.
    Everything it needs comes in as arguments: no module-level app, nothing shared through `app.state`."""
    app = FastAPI(title="coe", version="0.1.0",
                  description="Composition-of-Experts router with an OpenAI-compatible API")
    for router in routes:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes)
    # added later = runs earlier: auth and rate limit before any body is read
    app.add_middleware(Guard, keys=keys or KeyStore([]), rate_limiter=rate_limiter)
    app.add_middleware(ServerTiming)  # outermost: the `app` phase covers every other middleware
    document_responses(app)

    @app.exception_handler(CoeError)
    async def _coe_error(_: Request, exc: CoeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        # Unknown paths (404) and methods (405) answer in OpenAI's shape like every other error.
        err = for_status(exc.status_code, str(exc.detail))
        err.headers = dict(exc.headers or {})
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation_error(exc)
        return error_response(BadRequest(message, param))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(CoeError(f"internal error: {type(exc).__name__}"))

    return app
