"""`coe keys new|hash`: create API keys and the salted-hash lines of `auth.keys_file`."""

from __future__ import annotations

import argparse
import getpass
import sys

from coe.api.auth import SCOPES, format_entry, make_entry, new_key


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("keys", help="API keys: create a key, hash one for auth.keys_file")
    keys = p.add_subparsers(dest="keys_command", required=True)
    for name, help_text, func in [("new", "print a new random key (once) and its keys-file line", run_new),
                                  ("hash", "read a key from stdin, print its keys-file line", run_hash)]:
        q = keys.add_parser(name, help=help_text)
        q.add_argument("--name", required=True, help="shown in logs instead of the key")
        q.add_argument("--scope", choices=SCOPES, default="user")
        q.set_defaults(func=func)


def run_new(args: argparse.Namespace) -> int:
    key = new_key()
    print(f"key (shown once, give it to the client): {key}", file=sys.stderr)
    print(format_entry(make_entry(args.name, args.scope, key)))
    return 0


def run_hash(args: argparse.Namespace) -> int:
    # The key is read from stdin (or a prompt), never from argv, so it stays out of shell history and `ps`.
    key = getpass.getpass("key: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    print(format_entry(make_entry(args.name, args.scope, key)))
    return 0
