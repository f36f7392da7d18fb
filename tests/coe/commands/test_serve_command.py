"""`coe serve` as a process: it never trains (a missing artifact is named with the command that builds it), and
on SIGTERM it stops taking requests, lets the one in flight finish, shuts its app down and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COE = Path(sys.executable).with_name("coe")
SMOL = "registry:smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_expert_config(tmp_path: Path, port: int, artifact: Path) -> Path:
    """SmolLM2 alone (the committed router's map aliased onto it), on a private Ray."""
    cfg = {
        "experts": [{"name": "smollm2-135m", "model": SMOL, "max_tokens_limit": 256, "default_max_tokens": 32}],
        "router": {"artifact": str(artifact), "general_expert": "smollm2-135m",
                   "expert_aliases": {"qwen2.5-coder-0.5b": "smollm2-135m", "gemma3-270m": "smollm2-135m"}},
        "server": {"host": "127.0.0.1", "port": port},
        "ray": {"num_cpus": 4, "namespace": "coe-sigterm"},
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_missing_artifact_is_named_with_the_command_that_builds_it(tmp_path):
    """Exit 2 at once, before Ray starts, with the path and `coe setup`; nothing is written there."""
    missing = tmp_path / "no-router"
    config = one_expert_config(tmp_path, free_port(), missing)
    out = subprocess.run([str(COE), "serve", "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert f"{missing}: missing; build it with: coe setup --config {config}" in out.stderr
    assert "starting Ray" not in out.stdout
    assert not missing.exists()


def test_missing_artifacts_lists_each_artifact_the_config_needs(default_config, tmp_path):
    from coe.commands.serve import missing_artifacts

    assert missing_artifacts(default_config, "configs/default.yaml") == []  # the committed artifacts
    cfg = default_config.model_copy(deep=True)
    cfg.router.type = "glider"
    cfg.router.glider.artifact = tmp_path / "glider"
    cfg.experts[-1].moerging.artifact = tmp_path / "gates"
    assert missing_artifacts(cfg, "x.yaml") == [
        f"{tmp_path / 'glider'}: missing; build it with: coe train glider --out {tmp_path / 'glider'}",
        f"{tmp_path / 'gates'}: missing; build it with: coe train glider --token --out {tmp_path / 'gates'}"]


def wait_health(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"coe serve exited {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/health did not answer within {timeout_s:.0f} s")


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = one_expert_config(tmp_path, port, ROOT / "artifacts" / "coe-router")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([str(COE), "serve", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        wait_health(url, proc, timeout_s=600)
        body = {"model": "smollm2-135m", "max_tokens": 200, "stream": True, "temperature": 0.0,
                "messages": [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]}
        deltas, finish, done, sent_at = [], None, False, None
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                choice = json.loads(line[6:])["choices"][0]
                deltas.append(choice["delta"].get("content", ""))
                finish = choice.get("finish_reason") or finish
                if sent_at is None and "".join(deltas).strip():
                    sent_at = time.monotonic()  # the request is in flight: text has come, the rest has not
                    os.kill(proc.pid, signal.SIGTERM)
        finished_at = time.monotonic()
        assert sent_at is not None and done and finish in ("length", "stop"), (deltas, finish)
        assert finished_at > sent_at
        rc = proc.wait(timeout=120)
        out = proc.stdout.read()
        assert rc == 0, out[-3000:]
        assert "finishing those in flight" in out and "requests in flight finished" in out, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        with pytest.raises(httpx.HTTPError):  # the port is closed: nothing is served any more
            httpx.get(f"{url}/health", timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
