"""`coe serve`: run the app on a private local Ray (or an existing cluster) until Ctrl-C or SIGTERM, then drain."""

from __future__ import annotations

import argparse
import signal
import threading
import time

from coe.config import CoeConfig, load_config

DRAIN_S = 30.0  # the gateway's graceful_shutdown_timeout_s (coe/serve/app.py); Kubernetes waits 30 s by default


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("serve", help="serve the OpenAI-compatible endpoint")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--address", default=None, help="join a Ray cluster: 'auto' or ray://host:10001")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--drain-s", type=float, default=DRAIN_S,
                   help="on SIGTERM/Ctrl-C: how long requests in flight may take to finish")
    p.set_defaults(func=run)


def missing_artifacts(cfg: CoeConfig, config_path: str) -> list[str]:
    """What serving this config needs that is not built, each with the command that builds it: `coe serve` only
    serves (training belongs to `coe setup` and `coe train`)."""
    from coe.serve.routing import artifact_path

    rc = cfg.router
    router_cmd = {"coe": f"coe setup --config {config_path}   (or: coe train coe-router --config "
                         f"configs/train/coe.yaml --out {rc.artifact})",
                  "glider": f"coe setup --config {config_path}",
                  "per_prompt": f"coe train per-prompt-router --outcomes <table> --out {rc.artifact}"}[rc.type]
    needed = [(rc.artifact, router_cmd)]
    if rc.type == "glider":
        needed.append((rc.glider.artifact, f"coe train glider --out {rc.glider.artifact}"))
    needed += [(e.moerging.artifact, f"coe train glider --token --out {e.moerging.artifact}")
               for e in cfg.experts if e.moerging is not None]
    return [f"{artifact_path(p)}: missing; build it with: {cmd}"
            for p, cmd in needed if not (artifact_path(p) / "manifest.json").is_file()]


def run(args: argparse.Namespace) -> int:
    from coe.serve.reliability import auth_status
    from coe.serve.runner import drain, run_app, shutdown, start_ray

    cfg = load_config(args.config)
    if args.host:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    auth_status(cfg)  # refuse a non-loopback host without API keys before starting anything
    missing = missing_artifacts(cfg, args.config)
    if missing:
        raise FileNotFoundError("cannot serve " + args.config + ":\n  " + "\n  ".join(missing))
    stop, serving = threading.Event(), threading.Event()
    t0 = time.monotonic()
    try:
        print("coe: starting Ray" + (f" (joining {args.address})" if args.address else " (private, local)"),
              flush=True)
        start_ray(cfg, address=args.address)
        install_stop_handlers(stop, serving)  # after ray.init, which installs its own (exiting) SIGTERM handler
        print(f"coe: deploying {len(cfg.pools())} expert pools and the gateway; each replica loads its model "
              f"(about a minute on 2 CPU cores)", flush=True)
        serving.set()  # from here a stop drains: the gateway may take requests before every pool has loaded
        url = run_app(cfg, address=args.address, stop=stop)
        if not stop.is_set():
            print(f"coe is serving {len(cfg.experts)} experts at {url}/v1 after {time.monotonic() - t0:.0f} s "
                  f"(Ctrl-C or SIGTERM to stop)", flush=True)
            print(f"coe: {auth_status(cfg)}", flush=True)
        while not stop.wait(1.0):
            pass
        print(f"coe: stopping: no new requests; finishing those in flight (up to {args.drain_s:g} s)", flush=True)
        drained = drain(cfg.ray.app_name, args.drain_s)
        print("coe: requests in flight finished" if drained else
              f"coe: still draining after {args.drain_s:g} s; stopping anyway", flush=True)
    except KeyboardInterrupt:  # a signal during start-up, or a second one while draining
        pass
    finally:
        print("coe: shutting down", flush=True)
        shutdown()
    return 0


def install_stop_handlers(stop: threading.Event, serving: threading.Event) -> None:
    """SIGTERM (docker stop, Kubernetes) and Ctrl-C: the first drains once the app is being deployed (the gateway
    answers before every pool has loaded, so a request may be in flight then); one before that, or a second
    one, stops at once."""
    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set() or not serving.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
