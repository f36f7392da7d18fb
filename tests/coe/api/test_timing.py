"""Server-Timing: the middleware's `app` phase and the handler's own phases on real responses."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from coe.api.app import create_app
from coe.api.timing import PhaseTimer, parse_server_timing


@pytest.fixture()
def client():
    app = create_app(max_body_bytes=2048)

    @app.post("/timed")
    async def timed(request: Request) -> dict:
        timer = PhaseTimer(request.scope)
        timer.mark("parse")
        await asyncio.sleep(0.02)
        timer.mark("work")
        return {"phases": timer.phases}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events():
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return TestClient(app)


def test_parse_server_timing():
    assert parse_server_timing("a;dur=1.5, b;desc=x;dur=2, c") == {"a": 1.5, "b": 2.0}
    assert parse_server_timing("") == {}


def test_phase_timer_starts_at_the_stamped_arrival_and_adds_repeated_phases():
    timer = PhaseTimer({"state": {"coe_arrival": 0.0}})  # an arrival long ago: the first phase is huge
    assert timer.mark("parse") > 1000
    timer.mark("x")
    first = timer.phases["x"]
    timer.mark("x")
    assert timer.phases["x"] >= first
    assert timer.header().startswith("parse;dur=")


def test_every_response_carries_the_app_phase_covering_the_handler(client):
    r = client.post("/timed", json={})
    assert r.status_code == 200
    app_ms = parse_server_timing(r.headers["server-timing"])["app"]
    assert app_ms >= r.json()["phases"]["work"] >= 20


def test_streams_pass_through_whole_with_the_header(client):
    r = client.get("/stream")
    assert r.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert "app" in parse_server_timing(r.headers["server-timing"])


def test_errors_are_timed_too(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and "app" in parse_server_timing(r.headers["server-timing"])


def chunks(total: int, size: int = 500):
    for i in range(0, total, size):
        yield b"x" * min(size, total - i)


def test_a_chunked_body_over_the_limit_is_413_and_one_under_reaches_the_route(client):
    r = client.post("/timed", content=chunks(5000), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit of 2048" in r.json()["error"]["message"]
    body = b'{"a": 1}'
    r = client.post("/timed", content=iter([body[:3], body[3:]]), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
