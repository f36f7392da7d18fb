"""coe on a two-node Ray cluster on this machine, deployed with `serve deploy deploy/serve.cpu.yaml` as shipped
(0.0.0.0, auth on, the keys in the nodes' environment at `ray start`, none in the deploying shell): placement by
custom resource, routed chat through the proxy with a key, a killed replica, a rolling update of one expert."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from cluster_checks import CPU_SERVE_FILE, kill_actor, nodes_with, replica_actors, shipped_cpu_config, wait_http

from coe.api.auth import new_key
from eval.local_cluster import NodeSpec, serve_deploy, serve_deploy_file, start_cluster, wait_running

pytestmark = pytest.mark.slow

SMOL, GEMMA = "expert-smollm2-135m", "expert-gemma3-270m"
PROMPTS = ["Write a Python function that reverses a list", "Hi there! How are you doing today?",
           "Name three rivers in Europe."]
KEY_ENV = ("COE_API_KEYS", "COE_ADMIN_KEYS")
HEADERS: dict[str, str] = {}  # the user key of the deployed cluster (set by the fixture)


class Deployed:
    def __init__(self, cluster, url: str, config_path: Path, folder: Path) -> None:
        self.cluster, self.url, self.config_path, self.folder = cluster, url, config_path, folder

    @property
    def dash(self) -> str:
        return self.cluster.dashboard_url


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    user_key = new_key()
    # the keys live where the app is built: the nodes' environment at `ray start`
    node_env = {"COE_API_KEYS": user_key, "COE_ADMIN_KEYS": new_key()}
    cluster = start_cluster(NodeSpec(num_cpus=2, resources={"cpu_node": 2}),
                            [NodeSpec(num_cpus=3, resources={"expert_node": 4})], node_env=node_env)
    try:
        path, port = shipped_cpu_config(folder)
        shell = {k: v for k, v in cluster.env.items() if k not in KEY_ENV}  # the deploying shell has no keys
        serve_deploy_file(cluster, path, env=shell)
        wait_running(cluster.dashboard_url, timeout_s=600)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", timeout_s=120)
        HEADERS["Authorization"] = f"Bearer {user_key}"
        yield Deployed(cluster, url, path, folder)
    finally:
        HEADERS.clear()
        cluster.stop()


def test_the_deployed_file_is_the_shipped_one(deployed):
    """Byte for byte, or (port 8000 taken on this machine) a copy that differs in http_options.port only."""
    shipped = yaml.safe_load(CPU_SERVE_FILE.read_text())
    used = yaml.safe_load(deployed.config_path.read_text())
    used["http_options"]["port"] = shipped["http_options"]["port"]
    assert used == shipped


def test_auth_is_on_with_the_nodes_keys(deployed):
    body = {"model": "smollm2-135m", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    r = httpx.post(f"{deployed.url}/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 401, r.text
    r = httpx.post(f"{deployed.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=240)
    assert r.status_code == 200, r.text


def chat(url: str, model: str, prompt: str, max_tokens: int = 8) -> tuple[int, dict]:
    """One request; every outcome is recorded (status + body), transport errors as status 0."""
    try:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=240, headers=HEADERS, json={
            "model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]})
        return r.status_code, r.json()
    except (httpx.HTTPError, ValueError) as err:
        return 0, {"error": {"message": f"{type(err).__name__}: {err}"}}


def request_stream(url: str, models: list[str], stop: threading.Event, max_requests: int = 200,
                   max_s: float = 420) -> list[tuple[int, dict]]:
    """Two clients sending requests back to back until `stop` (bounded in count and time)."""
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_s

    def client(k: int) -> None:
        i = k
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if len(results) >= max_requests:
                    return
            out = chat(url, models[i % len(models)], PROMPTS[i % len(PROMPTS)])
            with lock:
                results.append(out)
            i += 2

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(client, range(2)))
    return results


def test_expert_replicas_land_on_the_node_with_the_resource(deployed):
    expert_nodes = nodes_with(deployed.dash, "expert_node")
    assert len(expert_nodes) == 1
    for name in (SMOL, GEMMA):
        replicas = replica_actors(deployed.dash, name)
        assert len(replicas) == 1 and replicas[0]["node_id"] in expert_nodes, (name, replicas)
    gateway = replica_actors(deployed.dash, "gateway")
    assert len(gateway) == 1 and gateway[0]["node_id"] not in expert_nodes


def test_routed_chat_through_the_proxy(deployed):
    seen = set()
    for prompt in PROMPTS:
        status, body = chat(deployed.url, "coe", prompt, max_tokens=16)
        assert status == 200, body
        assert body["model"] in ("smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m")
        assert body["choices"][0]["message"]["content"].strip()
        seen.add(body["model"])
    metrics = httpx.get(f"{deployed.url}/metrics", headers=HEADERS, timeout=30)
    assert "coe_routing_decisions_total{" in metrics.text


def test_killed_replica_is_restarted_and_no_request_is_dropped(deployed):
    old = replica_actors(deployed.dash, SMOL)[0]
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(request_stream, deployed.url, ["smollm2-135m"], stop, 60, 300)
        time.sleep(3)
        kill_actor(deployed.cluster, old["name"])
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            new = replica_actors(deployed.dash, SMOL)
            if new and new[0]["actor_id"] != old["actor_id"]:
                break
            time.sleep(1)
        wait_running(deployed.dash, timeout_s=240)
        stop.set()
        results = fut.result()
    assert results
    for status, body in results:  # each request got an answer or an error naming the expert, never silence
        assert status == 200 or (status in (500, 503, 504) and body["error"]["message"]), (status, body)
    after = [chat(deployed.url, "smollm2-135m", "Say hello.") for _ in range(3)]
    assert [s for s, _ in after] == [200, 200, 200], after
    assert replica_actors(deployed.dash, SMOL)[0]["actor_id"] != old["actor_id"]


def test_rolling_update_of_one_expert_fails_no_request(deployed):
    before = {d: replica_actors(deployed.dash, d)[0]["actor_id"] for d in ("gateway", SMOL, GEMMA)}
    config = yaml.safe_load(deployed.config_path.read_text())
    # a per-deployment override: new actor options for one expert -> Serve replaces that deployment only
    config["applications"][0]["deployments"] = [
        {"name": GEMMA, "ray_actor_options": {"num_cpus": 0.25, "resources": {"expert_node": 1}}}]
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(request_stream, deployed.url, ["gemma3-270m", "coe", "smollm2-135m"], stop, 150, 420)
        time.sleep(2)
        serve_deploy(deployed.cluster, config, deployed.folder / "serve-updated.yaml")  # args unchanged
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            now = replica_actors(deployed.dash, GEMMA)
            if len(now) == 1 and now[0]["actor_id"] != before[GEMMA]:
                break
            time.sleep(1)
        wait_running(deployed.dash, timeout_s=300)
        time.sleep(3)
        stop.set()
        results = fut.result()
    failed = [(s, b) for s, b in results if s != 200]
    assert results and not failed, failed
    after = {d: replica_actors(deployed.dash, d)[0]["actor_id"] for d in ("gateway", SMOL, GEMMA)}
    assert after["gateway"] == before["gateway"] and after[SMOL] == before[SMOL]
    assert after[GEMMA] != before[GEMMA]
    status, body = chat(deployed.url, "gemma3-270m", "Name a river.")
    assert status == 200 and body["model"] == "gemma3-270m"
