"""API keys: hashing, the keys file, environment keys, scopes and the loopback rule."""

import pytest

from coe.api.auth import (
    KeyConfigError,
    KeyStore,
    check_bind,
    format_entry,
    is_loopback,
    load_keys,
    make_entry,
    new_key,
    parse_keys_file,
)
from coe.api.errors import Forbidden, Unauthorized

USER_KEY, ADMIN_KEY = new_key(), new_key()


@pytest.fixture()
def store():
    return KeyStore([make_entry("alice", "user", USER_KEY), make_entry("root", "admin", ADMIN_KEY)])


def test_bearer_keys_map_to_names_and_scopes(store):
    assert store.identify(f"Bearer {USER_KEY}").name == "alice"
    root = store.identify(f"bearer   {ADMIN_KEY}")
    assert (root.name, root.scope) == ("root", "admin")
    store.authorize(root, "user")
    with pytest.raises(Forbidden, match="needs scope 'admin'"):
        store.authorize(store.identify(f"Bearer {USER_KEY}"), "admin")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", "Basic abc", USER_KEY, "Bearer " + USER_KEY + "x"])
def test_bad_headers_are_401_and_never_echo_the_key(store, header):
    with pytest.raises(Unauthorized) as err:
        store.identify(header)
    assert err.value.headers == {"WWW-Authenticate": "Bearer"}
    assert USER_KEY not in err.value.message


def test_file_of_salted_hashes_round_trips(tmp_path):
    e1, e2 = make_entry("alice", "user", USER_KEY), make_entry("bob", "user", USER_KEY)
    assert e1.salt != e2.salt and e1.digest != e2.digest  # same key, different salts
    path = tmp_path / "keys"
    path.write_text(f"# comment\n{format_entry(e1)}\n\n{format_entry(make_entry('root', 'admin', ADMIN_KEY))}\n")
    assert USER_KEY not in path.read_text()
    store = KeyStore(parse_keys_file(path))
    assert store.identify(f"Bearer {ADMIN_KEY}").scope == "admin"
    assert KeyStore.from_data(store.to_data()).identify(f"Bearer {USER_KEY}").name == "alice"


@pytest.mark.parametrize("line", ["alice user", "alice wizard 00ff " + "00" * 32, "alice user zz " + "00" * 32,
                                  "alice user 00ff 00"])
def test_bad_keys_file_lines_name_the_line(tmp_path, line):
    path = tmp_path / "keys"
    path.write_text("# header\n" + line + "\n")
    with pytest.raises(KeyConfigError, match=f"{path}:2"):
        parse_keys_file(path)


def test_env_keys_and_short_keys():
    store = load_keys(None, "K", "A", env={"K": f"{USER_KEY}, {new_key()}", "A": ADMIN_KEY})
    assert [(e.name, e.scope) for e in store.entries] == [("k-1", "user"), ("k-2", "user"), ("a-1", "admin")]
    with pytest.raises(KeyConfigError, match="shorter than 20") as err:
        load_keys(None, "K", "A", env={"K": "short-secret"})
    assert "short-secret" not in str(err.value)
    assert not load_keys(None, "K", "A", env={}).enabled


def test_auth_off_only_on_loopback(store):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    assert "OFF" in check_bind(KeyStore([]), "127.0.0.1")
    with pytest.raises(KeyConfigError, match="refusing to serve on 0.0.0.0 without API keys"):
        check_bind(KeyStore([]), "0.0.0.0")
    assert check_bind(store, "0.0.0.0") == "auth: on (2 API keys)"
    assert KeyStore([]).identify(None).scope == "admin"  # auth off: everything allowed (loopback only)
