"""The one error hierarchy: one class per failure kind, each naming its HTTP status and OpenAI error `type`.

Everything that can go wrong for a client raises (or, across a Ray boundary, returns inside a
`coe.serve.messages.Refusal`) one of these; `error_response` is the one place an error becomes an HTTP answer.
Plain Python (no Ray, no HTTP framework at import), so `coe.retrieval` and the deployments can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.responses import JSONResponse


class CoeError(Exception):
    """Base of errors the API reports to clients; `status` and `type` pick the HTTP answer. Picklable with all
    its fields (Exception pickles `args` and `__dict__`), so a deployment can hand one to the gateway."""

    status = 500
    type = "server_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class BadRequest(CoeError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(CoeError):
    status = 401
    type = "authentication_error"


class Forbidden(CoeError):
    status = 403
    type = "permission_error"


class NotFound(CoeError):
    status = 404
    type = "not_found_error"


class MethodNotAllowed(CoeError):
    status = 405
    type = "invalid_request_error"


class Conflict(CoeError):
    status = 409
    type = "invalid_request_error"


class PayloadTooLarge(CoeError):
    status = 413
    type = "invalid_request_error"


class Overloaded(CoeError):
    status = 429
    type = "rate_limit_error"


class ExpertUnavailable(CoeError):
    status = 503
    type = "service_unavailable"


class Timeout(CoeError):
    status = 504
    type = "timeout"


def for_status(status: int, message: str) -> CoeError:
    """The hierarchy's error for a status Starlette raised itself (unknown path, wrong method)."""
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PayloadTooLarge,
                Overloaded, ExpertUnavailable, Timeout):
        if cls.status == status:
            return cls(message)
    err = BadRequest(message) if 400 <= status < 500 else CoeError(message)
    err.status = status
    return err


def error_response(err: CoeError) -> JSONResponse:
    """The HTTP answer of an error: its status, OpenAI's error shape and its headers (e.g. Retry-After)."""
    from starlette.responses import JSONResponse

    return JSONResponse(err.body(), status_code=err.status, headers=err.headers or None)
