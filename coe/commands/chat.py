"""`coe chat PROMPT`: one request to a running coe, printing the answer and the routing decision."""

from __future__ import annotations

import argparse

import httpx


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("chat", help="send one chat request to a running server")
    p.add_argument("prompt")
    p.add_argument("--model", default="coe")
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--max-tokens", type=int, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    body = {"model": args.model, "messages": [{"role": "user", "content": args.prompt}]}
    if args.max_tokens:
        body["max_tokens"] = args.max_tokens
    r = httpx.post(f"{args.url}/v1/chat/completions", json=body, timeout=300)
    data = r.json()
    if r.status_code != 200:
        print(f"error {r.status_code}: {data['error']['message']}")
        return 1
    coe = data["coe"]
    print(f"[{data['model']} · category={coe['category']} · {coe['reason']}]")
    print(data["choices"][0]["message"]["content"])
    return 0
