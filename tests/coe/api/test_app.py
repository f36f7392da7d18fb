"""Request validation and error mapping of the real FastAPI app (no Ray: a route that only validates)."""

import pytest
from fastapi.testclient import TestClient

from coe.api.app import create_app
from coe.api.errors import NotFound
from coe.api.schemas import ChatCompletionRequest


@pytest.fixture()
def client():
    app = create_app(max_body_bytes=2048)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest):
        if body.model == "missing":
            raise NotFound("model 'missing' does not exist", "model")
        return {"ok": True, "max_tokens": body.requested_max_tokens, "stop": body.stop}

    return TestClient(app)


def good(**over):
    body = {"model": "coe", "messages": [{"role": "user", "content": "hi"}]}
    body.update(over)
    return body


def assert_openai_error(r, status, needle):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert needle in err["message"]


def test_good_request(client):
    r = client.post("/v1/chat/completions", json=good(stop="END", max_tokens=5))
    assert r.json() == {"ok": True, "max_tokens": 5, "stop": ["END"]}


def test_malformed_json(client):
    r = client.post("/v1/chat/completions", content=b'{"model": "coe", "messages": [',
                    headers={"content-type": "application/json"})
    assert_openai_error(r, 400, "not valid JSON")


@pytest.mark.parametrize("body,needle", [
    (good(messages=[]), "messages"),
    ({"model": "coe"}, "messages"),
    (good(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role"),
    (good(max_tokens=0), "max_tokens"),
    (good(max_tokens=-3), "max_tokens"),
    (good(max_tokens="many"), "max_tokens"),
    (good(temperature=5), "temperature"),
    (good(messages="hello"), "messages"),
    (good(stop=["a", "b", "c", "d", "e"]), "at most 4"),
    (good(seed=2**64), "seed"),
])
def test_bad_fields_are_named(client, body, needle):
    r = client.post("/v1/chat/completions", json=body)
    assert_openai_error(r, 400, needle)


def test_unknown_model_is_404(client):
    r = client.post("/v1/chat/completions", json=good(model="missing"))
    assert_openai_error(r, 404, "missing")
    assert r.json()["error"]["param"] == "model"


def test_oversize_body_is_413_and_next_request_works(client):
    r = client.post("/v1/chat/completions", json=good(messages=[{"role": "user", "content": "x" * 5000}]))
    assert_openai_error(r, 413, "limit is 2048")
    assert client.post("/v1/chat/completions", json=good()).status_code == 200
