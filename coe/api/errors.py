"""One error type per failure kind, mapped to HTTP status and OpenAI's error shape in one place."""

from __future__ import annotations

from typing import Any


class CoeError(Exception):
    """Base of errors the API reports to clients; `status` and `type` pick the HTTP answer."""

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


def error_body(status: int, message: str, type_: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": None}}


_BY_STATUS: dict[int, type[CoeError]] = {400: BadRequest, 404: NotFound, 413: PayloadTooLarge, 429: Overloaded,
                                         503: ExpertUnavailable, 504: Timeout}


def error_from_dict(err: dict[str, Any]) -> CoeError:
    """An error a deployment returned as data ({status, message, param}) → the matching error type."""
    cls = _BY_STATUS.get(int(err.get("status", 400)), BadRequest)
    return cls(str(err.get("message", "invalid request")), err.get("param"))
