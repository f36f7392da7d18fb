"""Documents what the API really answers: OpenAI-shaped errors on every operation (instead of FastAPI's
unused 422) and the chat completion's JSON and SSE bodies, so schema-based fuzzing can check conformance."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERRORS = {400: "invalid request", 401: "missing or invalid API key", 403: "API key lacks the scope",
          404: "unknown model, expert or path", 409: "conflict (artifact refused)", 413: "request body too large",
          429: "rate limit or expert queue full (see Retry-After)", 503: "expert unavailable",
          504: "expert timed out"}

_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": _NULLABLE_STRING, "code": _NULLABLE_STRING}}},
}
CHAT_COMPLETION_SCHEMA = {
    "type": "object", "required": ["id", "object", "created", "model", "choices", "usage", "coe"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["index", "message", "finish_reason"],
            "properties": {"message": {"type": "object", "required": ["role", "content"],
                                       "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}}},
                           "finish_reason": {"enum": ["stop", "length"]}}}},
        "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"]},
        "coe": {"type": "object", "required": ["expert", "reason"]},
    },
}
# One server-sent event, as OpenAPI documents event streams (before 3.2 the media type's schema is one event):
# `data` is a chat.completion.chunk as JSON, an error object, or the final `[DONE]`.
SSE_EVENT_SCHEMA = {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"},
                   "retry": {"type": "integer"}},
}
RETRIEVE_SCHEMA = {
    "type": "object", "required": ["object", "corpus", "data"],
    "properties": {
        "object": {"const": "list"}, "corpus": {"type": "string"},
        "data": {"type": "array", "items": {
            "type": "object", "required": ["results", "coe", "timings_ms"],
            "properties": {"results": {"type": "array", "items": {
                "type": "object", "required": ["id", "score", "title", "text"],
                "properties": {"id": {"type": "string"}, "score": {"type": "number"}, "title": {"type": "string"},
                               "text": {"type": "string"}}}},
                "coe": {"type": "object", "required": ["expert", "reason"]},
                "timings_ms": {"type": "object"}}}},
    },
}
SUCCESS = {
    ("post", "/v1/retrieve"): {"description": "ranked documents per query, with the routing decision",
                               "content": {"application/json": {"schema": RETRIEVE_SCHEMA}}},
    ("post", "/v1/chat/completions"): {
        "description": "a completion, or with stream=true server-sent events ending in `data: [DONE]`",
        "content": {"application/json": {"schema": CHAT_COMPLETION_SCHEMA},
                    "text/event-stream": {"schema": SSE_EVENT_SCHEMA}}},
}


def document_responses(app: FastAPI) -> None:
    """Replaces `app.openapi` with a generator that adds the error and success bodies above."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                             description=app.description, routes=app.routes, servers=app.servers)
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                if (method, path) in SUCCESS:
                    responses["200"] = SUCCESS[(method, path)]
                for status, text in ERRORS.items():
                    responses.setdefault(str(status), {
                        "description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
