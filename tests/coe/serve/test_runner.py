"""coe/serve/runner.py's readiness wait: RUNNING and /health both, a failed deploy named, a stop honoured."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from coe.serve import runner


def fake_status(monkeypatch: pytest.MonkeyPatch, statuses: list[str], healthy: bool = True) -> list[str]:
    seen: list[str] = []

    def status() -> SimpleNamespace:
        s = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(s)
        return SimpleNamespace(applications={"coe": SimpleNamespace(status=s, message="boom")})

    monkeypatch.setattr(runner.serve, "status", status)
    monkeypatch.setattr(runner, "answers_200", lambda url, timeout_s: healthy)
    return seen


def test_waits_for_running_not_just_health(monkeypatch):
    """The gateway answers /health while a pool still loads: ready only once the app is RUNNING."""
    seen = fake_status(monkeypatch, ["DEPLOYING", "DEPLOYING", "RUNNING"])
    assert runner.wait_running("coe", "http://x/health", timeout_s=10) is True
    assert seen == ["DEPLOYING", "DEPLOYING", "RUNNING"]


def test_a_stop_during_start_up_returns_false_at_once(monkeypatch):
    fake_status(monkeypatch, ["DEPLOYING"])
    stop = threading.Event()
    stop.set()
    assert runner.wait_running("coe", "http://x/health", timeout_s=10, stop=stop) is False


def test_a_failed_deploy_raises_with_serves_message(monkeypatch):
    fake_status(monkeypatch, ["DEPLOY_FAILED"])
    with pytest.raises(RuntimeError, match="coe app 'coe' failed to deploy: boom"):
        runner.wait_running("coe", "http://x/health", timeout_s=10)


def test_times_out_when_health_never_answers(monkeypatch):
    fake_status(monkeypatch, ["RUNNING"], healthy=False)
    assert runner.wait_running("coe", "http://x/health", timeout_s=0.5) is False
