"""`coe serve`: run the app on a private local Ray (or an existing cluster) until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from coe.config import load_config


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("serve", help="serve the OpenAI-compatible endpoint")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--address", default=None, help="join a Ray cluster: 'auto' or ray://host:10001")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coe.commands.setup import ensure_router_artifact
    from coe.serve.reliability import auth_status
    from coe.serve.runner import run_app, shutdown

    cfg = load_config(args.config)
    if args.host:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    auth_status(cfg)  # refuse a non-loopback host without API keys before starting anything
    ensure_router_artifact(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        url = run_app(cfg, address=args.address)
        print(f"coe is serving {len(cfg.experts)} experts at {url}/v1 (Ctrl-C to stop)", flush=True)
        print(f"coe: {auth_status(cfg)}", flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("coe: shutting down", flush=True)
        shutdown()
    return 0
