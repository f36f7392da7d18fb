"""The one error hierarchy: each class answers its HTTP status with OpenAI's error body, through the real app."""

from __future__ import annotations

import pickle

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from coe.api.app import create_app
from coe.api.errors import (
    BadRequest,
    CoeError,
    Conflict,
    ExpertUnavailable,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Timeout,
    Unauthorized,
    for_status,
)
from coe.retrieval import RetrievalNotFound, RetrievalRequestError

CASES = [
    (BadRequest, 400, "invalid_request_error"),
    (Unauthorized, 401, "authentication_error"),
    (Forbidden, 403, "permission_error"),
    (NotFound, 404, "not_found_error"),
    (MethodNotAllowed, 405, "invalid_request_error"),
    (Conflict, 409, "invalid_request_error"),
    (PayloadTooLarge, 413, "invalid_request_error"),
    (Overloaded, 429, "rate_limit_error"),
    (ExpertUnavailable, 503, "service_unavailable"),
    (Timeout, 504, "timeout"),
    (CoeError, 500, "server_error"),
    (RetrievalRequestError, 400, "invalid_request_error"),
    (RetrievalNotFound, 404, "not_found_error"),
]


def client_raising(err: Exception) -> TestClient:
    routes = APIRouter()

    @routes.get("/v1/boom")
    async def boom() -> dict:
        raise err

    return TestClient(create_app([routes]), raise_server_exceptions=False)


@pytest.mark.parametrize("cls,status,type_", CASES, ids=[c[0].__name__ for c in CASES])
def test_each_error_class_answers_its_status_and_body(cls, status, type_):
    r = client_raising(cls("what went wrong", "field", "some_code")).get("/v1/boom")
    assert r.status_code == status
    assert r.json() == {"error": {"message": "what went wrong", "type": type_, "param": "field",
                                  "code": "some_code"}}


def test_headers_travel_with_the_error():
    err = Overloaded("queue full", code="expert_overloaded", headers={"Retry-After": "3"})
    r = client_raising(err).get("/v1/boom")
    assert r.status_code == 429 and r.headers["retry-after"] == "3"


def test_an_unexpected_exception_is_a_500_in_the_same_shape():
    r = client_raising(KeyError("x")).get("/v1/boom")
    assert r.status_code == 500
    assert r.json() == {"error": {"message": "internal error: KeyError", "type": "server_error", "param": None,
                                  "code": None}}


def test_starlettes_own_404_and_405_answer_through_the_hierarchy():
    client = client_raising(BadRequest("unused"))
    missing = client.get("/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong = client.post("/v1/boom")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"
    assert wrong.headers["allow"] == "GET"


def test_for_status_picks_the_class_or_keeps_an_unlisted_status():
    assert type(for_status(409, "x")) is Conflict
    odd = for_status(418, "teapot")
    assert isinstance(odd, BadRequest) and odd.status == 418 and BadRequest.status == 400


@pytest.mark.parametrize("cls", [c[0] for c in CASES])
def test_errors_pickle_with_every_field(cls):
    """Deployments hand these to the gateway inside a Refusal, pickled by Ray."""
    err = cls("m", "p", "c", {"Retry-After": "2"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and back.body() == err.body() and back.headers == err.headers
    assert back.status == err.status
