"""A multi-node Ray cluster on one machine (`ray start` per node) for the cluster tests and benchmark.

Every node gets its own ports and the cluster its own temp dir, so it never meets another Ray on the host; each
`ray start` runs in its own session, and teardown kills exactly those process groups (never `ray stop`, which
would stop every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from experts.paths import REPO_ROOT

RAY_BIN = Path(os.environ.get("COE_RAY_BIN", Path(sys.executable).with_name("ray")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class NodeSpec:
    """One node: logical CPUs and custom resources (e.g. {"expert_node": 2})."""

    num_cpus: int
    resources: dict[str, float] = field(default_factory=dict)
    object_store_bytes: int = 150_000_000


def _port_args() -> list[str]:
    ports = {name: free_port() for name in (
        "node-manager-port", "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
        "metrics-export-port", "runtime-env-agent-port")}
    return [f"--{k}={v}" for k, v in ports.items()]


@dataclass
class LocalCluster:
    """A started cluster: where to reach it and which process groups to kill."""

    temp_dir: Path
    gcs_address: str
    dashboard_url: str
    env: dict[str, str]
    pgids: list[int] = field(default_factory=list)

    def add_node(self, spec: NodeSpec, head: bool = False) -> None:
        args = [str(RAY_BIN), "start", "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}",
                f"--num-cpus={spec.num_cpus}", "--num-gpus=0", f"--object-store-memory={spec.object_store_bytes}",
                "--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats", *_port_args()]
        if spec.resources:
            args.append(f"--resources={json.dumps(spec.resources)}")
        if head:
            port = int(self.gcs_address.rsplit(":", 1)[1])
            dash = int(self.dashboard_url.rsplit(":", 1)[1])
            args += ["--head", f"--port={port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                     f"--ray-client-server-port={free_port()}", "--include-dashboard=true"]
        else:
            args.append(f"--address={self.gcs_address}")
        proc = subprocess.Popen(args, env=self.env, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.pgids.append(proc.pid)  # its own session: the daemons it spawns keep this process group
        out, _ = proc.communicate(timeout=240)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{out[-3000:]}")

    def wait_nodes(self, count: int, timeout_s: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            nodes = alive_nodes(self.dashboard_url)
            if len(nodes) >= count:
                return nodes
            time.sleep(1)
        raise TimeoutError(f"{count} nodes did not join within {timeout_s:.0f} s")

    def stop(self, grace_s: float = 15) -> None:
        """SIGTERM each process group, then SIGKILL what is left; only the groups this cluster started."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pgid in self.pgids:
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace_s
            while sig == signal.SIGTERM and time.monotonic() < deadline and self._alive():
                time.sleep(0.5)
        self.pgids.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _alive(self) -> bool:
        for pgid in self.pgids:
            try:
                os.killpg(pgid, 0)
                return True
            except ProcessLookupError:
                continue
        return False


def auth_headers() -> dict[str, str]:
    """Ray's token auth: the dashboard's REST API wants the cluster token (RAY_AUTH_TOKEN or ~/.ray/auth_token)."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"authorization": f"Bearer {token}"} if token else {}


def state_list(dashboard_url: str, resource: str) -> list[dict[str, Any]]:
    """Ray's state API (`ray list nodes/actors`) over HTTP, alive entries only; [] while the dashboard starts."""
    try:
        r = httpx.get(f"{dashboard_url}/api/v0/{resource}", headers=auth_headers(), timeout=30,
                      params={"limit": 1000, "detail": "true", "filter_keys": "state", "filter_predicates": "=",
                              "filter_values": "ALIVE"})
        r.raise_for_status()
        return list(r.json()["data"]["result"]["result"])
    except (httpx.HTTPError, KeyError, ValueError):
        return []


def alive_nodes(dashboard_url: str) -> list[dict[str, Any]]:
    return state_list(dashboard_url, "nodes")


def start_cluster(head: NodeSpec, workers: list[NodeSpec], temp_dir: Path | None = None,
                  node_env: dict[str, str] | None = None) -> LocalCluster:
    """Head + workers on 127.0.0.1; PYTHONPATH points at this checkout so workers import this code. `node_env`
    is what the nodes see at `ray start` (e.g. COE_API_KEYS: the app's build task reads keys there)."""
    # short: Ray puts unix sockets under it, and a socket path must stay under ~107 bytes
    tmp = temp_dir or Path(tempfile.mkdtemp(prefix="coe-rc-", dir="/tmp"))
    env = dict(os.environ) | (node_env or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"] = "token"  # the head enables token auth; joining nodes and drivers must use it too
    env.pop("RAY_ADDRESS", None)
    cluster = LocalCluster(tmp, f"127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}", env)
    try:
        cluster.add_node(head, head=True)
        for spec in workers:
            cluster.add_node(spec)
        cluster.wait_nodes(1 + len(workers))
    except BaseException:
        cluster.stop()
        raise
    return cluster


# ---- the coe app on it, through `serve deploy` --------------------------------------------------------------
SERVE_BIN = Path(os.environ.get("COE_SERVE_BIN", Path(sys.executable).with_name("serve")))
SMALL_EXPERTS = {
    "smollm2-135m": {"model": "registry:smollm2-135m-instruct", "params_b": 0.135},
    "gemma3-270m": {"model": "registry:gemma3-270m", "params_b": 0.268, "chat_template": False},
}


def small_serve_config(port: int, replicas: dict[str, int] | None = None,
                       node_resource: str = "expert_node") -> dict[str, Any]:
    """A copy of deploy/serve.yaml for one machine: two small CPU experts that must run on a node offering
    `node_resource`, the proxy on the head only (every proxy would bind the same loopback port)."""
    base = yaml.safe_load((REPO_ROOT / "deploy" / "serve.yaml").read_text())
    app = base["applications"][0]
    inline = app["args"]["inline"]
    replicas = replicas or {}
    inline["experts"] = [
        {"name": name, "backend": "transformers", "max_tokens_limit": 256, "default_max_tokens": 32, **spec,
         "resources": {"num_cpus": 0.5, "custom": {node_resource: 1}},
         "autoscaling": {"min_replicas": replicas.get(name, 1), "max_replicas": replicas.get(name, 1)}}
        for name, spec in SMALL_EXPERTS.items()]
    inline["router"]["general_expert"] = "smollm2-135m"
    inline["router"]["expert_aliases"] = {"qwen2.5-coder-0.5b": "smollm2-135m"}
    inline["server"] = {"host": "127.0.0.1", "port": port, "request_timeout_s": 180}
    app.pop("deployments", None)
    base["proxy_location"] = "HeadOnly"
    base["http_options"] = {"host": "127.0.0.1", "port": port, "request_timeout_s": 300}
    return base


def serve_deploy(cluster: LocalCluster, config: dict[str, Any], path: Path) -> None:
    """`serve deploy` a config dict (written to path) through the head's dashboard."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    serve_deploy_file(cluster, path)


def serve_deploy_file(cluster: LocalCluster, path: Path, env: dict[str, str] | None = None) -> None:
    """`serve deploy <path>` through the head's dashboard, from a shell with `env` (default: the nodes')."""
    out = subprocess.run([str(SERVE_BIN), "deploy", str(path), "-a", cluster.dashboard_url],
                         env=cluster.env if env is None else env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"serve deploy failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def app_status(dashboard_url: str, app: str = "coe") -> str:
    try:
        apps = httpx.get(f"{dashboard_url}/api/serve/applications/", headers=auth_headers(),
                         timeout=10).json()["applications"]
    except (httpx.HTTPError, KeyError, ValueError):
        return "UNKNOWN"
    return str(apps.get(app, {}).get("status", "NOT_STARTED"))


def wait_running(dashboard_url: str, timeout_s: float, app: str = "coe") -> None:
    deadline = time.monotonic() + timeout_s
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        status = app_status(dashboard_url, app)
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            raise RuntimeError(f"application {app!r} failed to deploy")
        time.sleep(1)
    raise TimeoutError(f"application {app!r} not RUNNING within {timeout_s:.0f} s (last: {status})")


def serve_shutdown(cluster: LocalCluster, timeout_s: float = 120) -> None:
    """Remove every Serve app of this cluster (and Serve itself) so the next deploy starts cold."""
    subprocess.run([str(SERVE_BIN), "shutdown", "-y", "-a", cluster.dashboard_url], env=cluster.env,
                   capture_output=True, text=True, timeout=timeout_s, check=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and app_status(cluster.dashboard_url) not in ("NOT_STARTED", "UNKNOWN"):
        time.sleep(1)
