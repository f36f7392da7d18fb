"""Checks the cluster tests make on the local multi-node cluster of eval/local_cluster.py (which the cluster
benchmark shares): the shipped CPU Serve file, where replicas run, killing one, waiting for HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from eval.local_cluster import LocalCluster, alive_nodes, free_port, state_list
from experts.paths import REPO_ROOT


def wait_http(url: str, timeout_s: float) -> None:
    from coe.serve.runner import answers_200

    if not answers_200(url, timeout_s):
        raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")


CPU_SERVE_FILE = REPO_ROOT / "deploy" / "serve.cpu.yaml"


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def shipped_cpu_config(folder: Path) -> tuple[Path, int]:
    """deploy/serve.cpu.yaml itself, and its HTTP port; when that port is taken on this machine, a copy in
    `folder` that differs in http_options.port only (Serve configs take no port from the command line)."""
    config = yaml.safe_load(CPU_SERVE_FILE.read_text())
    port = int(config["http_options"]["port"])
    if port_is_free(port):
        return CPU_SERVE_FILE, port
    port = free_port()
    config["http_options"]["port"] = port
    path = folder / "serve.cpu.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, port


def replica_actors(dashboard_url: str, deployment: str, app: str = "coe") -> list[dict[str, Any]]:
    """Alive Serve replica actors of one deployment: actor_id, name, node_id, pid."""
    cls = f"ServeReplica:{app}:{deployment}"
    return [{k: a.get(k) for k in ("actor_id", "name", "node_id", "pid")}
            for a in state_list(dashboard_url, "actors") if a.get("class_name") == cls]


def nodes_with(dashboard_url: str, resource: str) -> set[str]:
    return {n["node_id"] for n in alive_nodes(dashboard_url) if n.get("resources_total", {}).get(resource)}


def kill_actor(cluster: LocalCluster, name: str) -> None:
    """ray.kill(no_restart=True) from a separate driver, so the caller's own Ray (if any) is untouched."""
    code = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "ray.kill(ray.get_actor(sys.argv[2], namespace='serve'), no_restart=True)")
    subprocess.run([sys.executable, "-c", code, cluster.gcs_address, name], env=cluster.env, check=True,
                   capture_output=True, timeout=120)
