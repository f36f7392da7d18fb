"""A second Serve app for reliability tests, beside the default one (one Ray per pytest process).

It shares the session's Ray and HTTP proxy (route prefix /rel) and has auth on, a rate limit, and experts
made to misbehave: `broken` (always fails), `flaky` (fails while a switch file exists), both through the test-only
backends of failing_backend.py, `slow` (a 1.5 s timeout) and a `general` fallback with a tiny queue. All are
SmolLM2-135M, the fastest embedded model.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from coe.api.auth import format_entry, make_entry, new_key

SMOL = "registry:smollm2-135m-instruct"
ROOT = Path(__file__).resolve().parents[3]
FAILING = "tests.coe.serve.failing_backend"


@dataclass(frozen=True)
class RelApp:
    url: str
    keys: dict[str, tuple[str, str]]  # name -> (scope, plain key)
    artifact: Path
    flaky_switch: Path  # while this file exists, `flaky` fails every generation

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name][1]}"}


def rel_config(artifact, keys_file, flaky_switch):
    from coe.config import parse_config

    small = {"num_cpus": 0.25}
    return parse_config({
        "experts": [
            {"name": "general", "model": SMOL, "pool": "rel-a", "resources": small, "default_max_tokens": 16,
             "max_ongoing_requests": 1, "max_queued_requests": 2},
            {"name": "broken", "model": SMOL, "pool": "rel-b", "resources": small, "backend": f"{FAILING}:broken"},
            {"name": "flaky", "model": SMOL, "pool": "rel-b", "backend": f"{FAILING}:flaky",
             "backend_options": {"switch_file": str(flaky_switch)}},
            {"name": "slow", "model": SMOL, "pool": "rel-b", "timeout_s": 1.5},
        ],
        # The two categories the tests route through are pinned, so the learned map can change without them.
        "router": {"artifact": str(artifact), "general_expert": "general", "min_confidence": 0.2,
                   "expert_aliases": {"smollm2-135m": "general", "qwen2.5-coder-0.5b": "broken",
                                      "gemma3-270m": "flaky"},
                   "category_map": {"computer_science": "broken", "history": "flaky"}},
        "server": {"host": "127.0.0.1", "request_timeout_s": 60},
        "auth": {"keys_file": str(keys_file)},
        "reliability": {"breaker": {"failure_threshold": 2, "reset_after_s": 4},
                        "rate_limit": {"requests_per_s": 2, "burst": 30}},
        "ray": {"app_name": "rel", "route_prefix": "/rel"},
    }, "<reliability test config>")


@pytest.fixture(scope="session")
def rel_artifact(tmp_path_factory):
    art = tmp_path_factory.mktemp("router") / "coe-router"
    shutil.copytree(ROOT / "artifacts" / "coe-router", art)
    return art


@pytest.fixture(scope="session")
def served_rel(deploy_side, rel_artifact, tmp_path_factory):
    """The reliability app: its base URL and API keys (auth is on)."""
    from ray import serve

    keys = {"alice": ("user", new_key()), "bob": ("user", new_key()), "root": ("admin", new_key())}
    keys_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys_file.write_text("".join(format_entry(make_entry(n, s, k)) + "\n" for n, (s, k) in keys.items()))
    flaky_switch = keys_file.parent / "flaky-fails"
    cfg = rel_config(rel_artifact, keys_file, flaky_switch)
    url = deploy_side(cfg)
    yield RelApp(url, keys, rel_artifact, flaky_switch)
    serve.delete("rel")
