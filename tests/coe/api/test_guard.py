"""The guard middleware on the real FastAPI app (no Ray): public, user and admin paths, rate limits."""

import pytest
from fastapi.testclient import TestClient

from coe.api.app import create_app
from coe.api.auth import KeyStore, make_entry, new_key
from coe.api.guard import app_path, required_scope
from coe.api.limits import RateLimiter

USER, ADMIN = new_key(), new_key()


def make_client(keys, rate=None, burst=100):
    app = create_app(keys=keys, rate_limiter=RateLimiter(rate, burst))

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"data": []}

    @app.post("/v1/experts/{name}/load")
    async def load(name: str):
        return {"name": name}

    return TestClient(app)


@pytest.fixture()
def client():
    return make_client(KeyStore([make_entry("alice", "user", USER), make_entry("root", "admin", ADMIN)]))


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def assert_error(r, status, type_):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == type_
    return err


def test_scopes(client):
    assert client.get("/health").status_code == 200  # liveness stays public
    assert_error(client.get("/v1/models"), 401, "authentication_error")
    err = assert_error(client.get("/v1/models", headers=bearer("coe-wrong-key-1234567890")), 401,
                       "authentication_error")
    assert "coe-wrong-key" not in err["message"]
    assert client.get("/v1/models", headers=bearer(USER)).status_code == 200
    assert_error(client.post("/v1/experts/a/load", headers=bearer(USER)), 403, "permission_error")
    assert client.post("/v1/experts/a/load", headers=bearer(ADMIN)).json() == {"name": "a"}
    assert client.get("/v1/models", headers=bearer(ADMIN)).status_code == 200


def test_auth_runs_before_the_body_is_parsed(client):
    r = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 401, "authentication_error")


def test_rate_limit_is_per_key_and_429_has_retry_after():
    keys = KeyStore([make_entry("alice", "user", USER), make_entry("bob", "user", ADMIN)])
    client = make_client(keys, rate=0.01, burst=2)
    for _ in range(2):
        assert client.get("/v1/models", headers=bearer(USER)).status_code == 200
    r = client.get("/v1/models", headers=bearer(USER))
    assert_error(r, 429, "rate_limit_error")
    assert int(r.headers["retry-after"]) >= 1
    assert client.get("/v1/models", headers=bearer(ADMIN)).status_code == 200  # bob has his own bucket
    assert client.get("/health").status_code == 200  # not limited


def test_auth_off_lets_everything_through():
    client = make_client(KeyStore([]))
    assert client.get("/v1/models").status_code == 200
    assert client.post("/v1/experts/a/load").status_code == 200


def test_paths_and_scopes():
    assert required_scope("/health") is None
    assert required_scope("/v1/chat/completions") == "user"
    assert required_scope("/v1/expertsx") == "user"
    assert required_scope("/v1/experts") == "admin"
    assert required_scope("/v1/router/reload") == "admin"
    assert app_path({"path": "/rel/v1/experts", "root_path": "/rel"}) == "/v1/experts"
    assert app_path({"path": "/v1/models", "root_path": ""}) == "/v1/models"


def test_openapi_documents_openai_errors_not_422(client):
    schema = client.get("/openapi.json", headers=bearer(USER)).json()
    op = schema["paths"]["/v1/models"]["get"]
    assert "422" not in op["responses"]
    assert {"400", "401", "403", "404", "413", "429", "503", "504"} <= set(op["responses"])
    err = op["responses"]["401"]["content"]["application/json"]["schema"]
    assert err["properties"]["error"]["required"] == ["message", "type", "param", "code"]


def test_unknown_paths_and_methods_answer_in_openai_shape(client):
    assert_error(client.get("/v1/nothing", headers=bearer(USER)), 404, "not_found_error")
    assert_error(client.delete("/v1/models", headers=bearer(USER)), 405, "invalid_request_error")
