"""Where a request's time goes, in a standard `Server-Timing` header (cheap enough to leave on).

The outermost middleware stamps the request's arrival in the ASGI scope and adds `app;dur=` (arrival to the
response's start) to every response; handlers add their own phases (`parse`, `route`, `expert`, `build`) with
a `PhaseTimer`. A client subtracts `app` from its own round trip to get what the HTTP proxy costs.
"""

from __future__ import annotations

import time
from typing import Any

ARRIVAL_KEY = "coe_arrival"


class PhaseTimer:
    """Consecutive phases of one request in milliseconds, from the arrival the middleware stamped."""

    def __init__(self, scope: dict[str, Any] | None = None) -> None:
        state = (scope or {}).get("state") or {}
        arrival = state.get(ARRIVAL_KEY)
        self.last = time.perf_counter() if arrival is None else arrival
        self.phases: dict[str, float] = {}

    def mark(self, name: str) -> float:
        """Ends phase `name` now (adding to it if it ran before); returns its length in ms."""
        now = time.perf_counter()
        ms = (now - self.last) * 1000
        self.phases[name] = self.phases.get(name, 0.0) + ms
        self.last = now
        return ms

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.2f}" for name, ms in self.phases.items())


def parse_server_timing(value: str) -> dict[str, float]:
    """`a;dur=1.5, b;dur=2` -> {"a": 1.5, "b": 2.0} (entries without a duration are left out)."""
    out: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (p.strip() for p in entry.split(";"))
        for p in params:
            if p.startswith("dur="):
                out[name] = out.get(name, 0.0) + float(p[4:])
    return out


class ServerTiming:
    """Pure ASGI (streams and disconnects pass through untouched): stamps arrival, adds `app;dur=`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        arrival = time.perf_counter()
        scope.setdefault("state", {})[ARRIVAL_KEY] = arrival

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                app_ms = (time.perf_counter() - arrival) * 1000
                headers = list(message.get("headers", ()))
                headers.append((b"server-timing", f"app;dur={app_ms:.2f}".encode()))
                message = message | {"headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)
