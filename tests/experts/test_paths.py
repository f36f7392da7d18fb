"""The one place a relative path becomes absolute: against the checkout (or the cwd first, for CLI input)."""

from __future__ import annotations

import os
from pathlib import Path

from experts.paths import REPO_ROOT, repo_path


def test_relative_paths_resolve_against_the_checkout_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifacts").mkdir()
    assert repo_path("artifacts/coe-router") == REPO_ROOT / "artifacts" / "coe-router"
    assert repo_path("artifacts", cwd_first=True) == Path("artifacts")  # exists here: what the user meant
    assert repo_path("configs/default.yaml", cwd_first=True) == REPO_ROOT / "configs" / "default.yaml"
    assert repo_path(tmp_path / "x") == tmp_path / "x"


def test_a_relative_keys_file_is_read_from_the_checkout(tmp_path, monkeypatch):
    """On a cluster node the app's build task runs with a session folder as cwd: the checkout's file is read."""
    from coe.api.auth import format_entry, make_entry, new_key
    from coe.config import parse_config
    from coe.serve.reliability import keys_for

    keys = tmp_path / "keys.txt"
    keys.write_text(format_entry(make_entry("alice", "user", new_key())) + "\n")
    monkeypatch.chdir(tmp_path / "..")  # the relative path below means nothing from here
    monkeypatch.delenv("COE_API_KEYS", raising=False)
    monkeypatch.delenv("COE_ADMIN_KEYS", raising=False)
    relative = os.path.relpath(keys, REPO_ROOT)  # relative to the checkout
    cfg = parse_config({"experts": [{"name": "a", "model": "m"}], "router": {"general_expert": "a"},
                        "auth": {"keys_file": relative}})
    assert [e.name for e in keys_for(cfg).entries] == ["alice"]
