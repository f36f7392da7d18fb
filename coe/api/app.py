"""The FastAPI application object: error mapping to OpenAI's shape and request-size limits."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware

from coe.api.errors import CoeError, error_body
from coe.api.guard import Guard
from coe.api.openapi import document_responses

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


class BodySizeLimit(BaseHTTPMiddleware):
    """Refuses bodies over the configured size (413) before they are read into memory twice."""

    async def dispatch(self, request: Request, call_next):  # noqa: ANN001
        limit = int(getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return JSONResponse(
                error_body(413, f"request body is {length} bytes; the limit is {limit}",
                           "invalid_request_error"), status_code=413)
        if request.method in ("POST", "PUT", "PATCH") and length is None:
            body = await request.body()
            if len(body) > limit:
                return JSONResponse(
                    error_body(413, f"request body is over the limit of {limit} bytes",
                               "invalid_request_error"), status_code=413)
        return await call_next(request)


def create_app() -> FastAPI:
    """The app; the gateway sets `app.state.max_body_bytes` from the config when its replica starts."""
    app = FastAPI(title="coe", version="0.1.0",
                  description="Composition-of-Experts router with an OpenAI-compatible API")
    app.state.max_body_bytes = DEFAULT_MAX_BODY_BYTES
    app.add_middleware(BodySizeLimit)
    app.add_middleware(Guard)  # added last = runs first: auth and rate limit before any body is read
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
