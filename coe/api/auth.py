"""API keys: salted HMAC-SHA256 hashes compared in constant time, scopes `user` < `admin`.

Plain keys live only in the environment (`COE_API_KEYS`, `COE_ADMIN_KEYS`) or in the client; the keys file
holds `name scope salt digest` lines written by `coe keys hash`. Keys are random tokens (`coe keys new`), so a
salted fast hash is enough and keeps per-request checks cheap; short keys are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coe.api.errors import Forbidden, Unauthorized

SCOPES = ("user", "admin")
MIN_KEY_CHARS = 20
ANONYMOUS = "anonymous"


class KeyConfigError(ValueError):
    """Keys that cannot be used; the message names the source (never the key)."""


@dataclass(frozen=True)
class KeyEntry:
    name: str
    scope: str
    salt: bytes
    digest: bytes


@dataclass(frozen=True)
class Identity:
    """Who sent a request; `name` is safe to log, the key never is."""

    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


def new_key() -> str:
    return "coe-" + secrets.token_urlsafe(32)


def hash_key(key: str, salt: bytes) -> bytes:
    return hmac.new(salt, key.encode(), hashlib.sha256).digest()


def make_entry(name: str, scope: str, key: str, salt: bytes | None = None) -> KeyEntry:
    if scope not in SCOPES:
        raise KeyConfigError(f"key {name!r}: scope must be one of {SCOPES}, got {scope!r}")
    if len(key) < MIN_KEY_CHARS:
        raise KeyConfigError(f"key {name!r} is shorter than {MIN_KEY_CHARS} characters; use `coe keys new`")
    salt = salt or secrets.token_bytes(16)
    return KeyEntry(name, scope, salt, hash_key(key, salt))


def format_entry(e: KeyEntry) -> str:
    """One line of a keys file."""
    return f"{e.name} {e.scope} {e.salt.hex()} {e.digest.hex()}"


def parse_keys_file(path: Path) -> list[KeyEntry]:
    if not path.is_file():
        raise KeyConfigError(f"{path}: keys file not found")
    entries = []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            name, scope, salt, digest = parts
            entry = KeyEntry(name, scope, bytes.fromhex(salt), bytes.fromhex(digest))
        except ValueError:
            raise KeyConfigError(f"{path}:{no}: expected 'name scope salt_hex sha256_hex'") from None
        if scope not in SCOPES or len(entry.digest) != 32 or not entry.salt:
            raise KeyConfigError(f"{path}:{no}: bad scope, salt or digest")
        entries.append(entry)
    return entries


def keys_from_env(env: Mapping[str, str], var: str, scope: str) -> list[KeyEntry]:
    keys = [k.strip() for k in env.get(var, "").split(",") if k.strip()]
    return [make_entry(f"{var.lower()}-{i}", scope, k) for i, k in enumerate(keys, 1)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KeyStore:
    """Checks bearer tokens; empty means auth is off (allowed only on loopback, see `check_bind`)."""

    def __init__(self, entries: list[KeyEntry]) -> None:
        self.entries = list(entries)

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def identify(self, authorization: str | None) -> Identity:
        """The caller behind an `Authorization` header; raises Unauthorized without echoing the header."""
        if not self.enabled:
            return Identity(ANONYMOUS, "admin")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'",
                               code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
        token = token.strip()
        found = None
        for e in self.entries:  # every entry is checked, so timing does not tell which one matched
            if hmac.compare_digest(hash_key(token, e.salt), e.digest) and found is None:
                found = e
        if found is None:
            raise Unauthorized("invalid API key", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        return Identity(found.name, found.scope)

    def authorize(self, identity: Identity, scope: str) -> None:
        if not identity.allows(scope):
            raise Forbidden(f"this endpoint needs scope {scope!r}; key {identity.name!r} has {identity.scope!r}",
                            code="insufficient_scope")

    # Entries travel to the gateway replica as plain data (hashes only, never keys).
    def to_data(self) -> list[dict[str, str]]:
        return [{"name": e.name, "scope": e.scope, "salt": e.salt.hex(), "digest": e.digest.hex()}
                for e in self.entries]

    @classmethod
    def from_data(cls, data: list[dict[str, Any]] | None) -> KeyStore:
        return cls([KeyEntry(d["name"], d["scope"], bytes.fromhex(d["salt"]), bytes.fromhex(d["digest"]))
                    for d in data or []])


def load_keys(keys_file: Path | None, keys_env: str, admin_keys_env: str,
              env: Mapping[str, str] | None = None) -> KeyStore:
    """Keys from the file of hashes and from the two environment variables."""
    env = os.environ if env is None else env
    entries = parse_keys_file(keys_file) if keys_file else []
    entries += keys_from_env(env, keys_env, "user") + keys_from_env(env, admin_keys_env, "admin")
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise KeyConfigError(f"key names repeated: {dupes}")
    return KeyStore(entries)


def check_bind(store: KeyStore, host: str) -> str:
    """Refuses to serve without keys off loopback; returns the start-up line that says how auth stands."""
    if store.enabled:
        return f"auth: on ({len(store.entries)} API keys)"
    if not is_loopback(host):
        raise KeyConfigError(f"refusing to serve on {host} without API keys: set COE_API_KEYS (or auth.keys_file "
                             "with lines from `coe keys hash`), or bind server.host to 127.0.0.1")
    return f"auth: OFF (no API keys; serving on loopback {host} only)"
