"""The FastAPI application object: error mapping to OpenAI's shape and request-size limits."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from coe.api.errors import CoeError, error_body
from coe.api.guard import Guard
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
    return JSONResponse(error_body(413, what, "invalid_request_error"), status_code=413)


class BodySizeLimit:
    """Refuses bodies over the configured size (413) before they are parsed. Pure ASGI: starlette's
    BaseHTTPMiddleware runs the rest of the app in a task of its own and copies every response through a
    memory stream, a cost each request paid here."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = int(getattr(scope["app"].state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
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


def create_app() -> FastAPI:
    """The app; the gateway sets `app.state.max_body_bytes` from the config when its replica starts."""
    app = FastAPI(title="coe", version="0.1.0",
                  description="Composition-of-Experts router with an OpenAI-compatible API")
    app.state.max_body_bytes = DEFAULT_MAX_BODY_BYTES
    app.add_middleware(BodySizeLimit)
    app.add_middleware(Guard)  # added later = runs earlier: auth and rate limit before any body is read
    app.add_middleware(ServerTiming)  # outermost: the `app` phase covers every other middleware
    document_responses(app)

    @app.exception_handler(CoeError)
    async def _coe_error(_: Request, exc: CoeError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        # Unknown paths (404) and methods (405) answer in OpenAI's shape like every other error.
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(exc.status_code, str(exc.detail), type_), status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation_error(exc)
        return JSONResponse(error_body(400, message, "invalid_request_error", param), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}", "server_error"),
                            status_code=500)

    return app
