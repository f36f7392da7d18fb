"""deploy/*.yaml validate against Ray's own parsers, and what the Serve config asks for exists in the cluster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text())


def prepared(name: str) -> dict[str, Any]:
    """What `ray up` works on: defaults filled in, then Ray's schema check (ray-schema.json + its own rules)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(copy.deepcopy(load(name)))
    validate_config(cfg)
    return cfg


@pytest.mark.parametrize("name", ["cluster.yaml", "local-cluster.yaml"])
def test_cluster_launcher_files_pass_rays_schema(name):
    cfg = prepared(name)
    assert cfg["head_node_type"] in cfg["available_node_types"]


def test_a_broken_cluster_file_is_rejected():
    """The check above can fail: an unknown node-type field does not pass Ray's schema."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = load("cluster.yaml")
    bad["available_node_types"]["gpu_worker"]["gpus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))


def test_gpu_workers_install_the_gpu_extra_and_cpu_workers_no_extra():
    types = prepared("cluster.yaml")["available_node_types"]
    gpu = " ".join(types["gpu_worker"]["worker_setup_commands"])
    cpu = " ".join(types["cpu_worker"]["worker_setup_commands"])
    assert "pip install -e '.[gpu]'" in gpu
    assert "pip install -e ." in cpu and "[gpu]" not in cpu and "[cpu]" not in cpu
    assert types["head"]["resources"].get("CPU") == 0


def serve_app(name: str = "serve.yaml") -> Any:
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(load(name)).applications[0]


@pytest.fixture(autouse=True)
def api_keys(monkeypatch):
    """The cluster config serves on 0.0.0.0, which coe refuses without API keys (deploy/README.md)."""
    monkeypatch.setenv("COE_API_KEYS", "test-key-0123456789abcdef0123456789")


def test_serve_config_passes_serve_schema_and_builds():
    from ray.serve._private.build_app import build_app as serve_build

    from coe.serve.app import build_app

    app = serve_app()
    assert app.import_path == "coe.serve.app:build_app"
    built = serve_build(build_app(app.args), name=app.name)
    names = {d.name for d in built.deployments}
    assert built.ingress_deployment_name == "gateway"
    assert names == {"gateway", "expert-llama-3.1-8b", "expert-qwen2-7b", "expert-gemma-2-9b"}
    # an override naming a deployment that does not exist would fail at deploy time
    assert {d.name for d in app.deployments} <= names


def test_every_replica_fits_a_node_type_of_the_cluster():
    """Each deployment's resources (CPUs, GPUs, custom) are offered by some worker type of cluster.yaml."""
    from ray.serve._private.build_app import build_app as serve_build

    from coe.serve.app import build_app

    types = prepared("cluster.yaml")["available_node_types"]
    app = serve_app()
    for d in serve_build(build_app(app.args), name=app.name).deployments:
        opts = d.ray_actor_options
        need = {"CPU": opts.get("num_cpus", 0), "GPU": opts.get("num_gpus", 0), **opts.get("resources", {})}
        fits = [t for t, spec in types.items()
                if all(spec["resources"].get(k, 0) >= v for k, v in need.items() if v)]
        assert fits, f"{d.name} needs {need}; no node type offers it"
        if need["GPU"]:
            assert fits == ["gpu_worker"], d.name
        if d.name == "gateway":
            assert fits == ["cpu_worker"]


def test_cpu_serve_config_builds_the_embedded_default_on_cpu_nodes():
    """deploy/serve.cpu.yaml: Serve's schema, no GPU anywhere, experts on `expert_node`, the gateway on `cpu_node`."""
    from ray.serve._private.build_app import build_app as serve_build

    from coe.serve.app import build_app

    app = serve_app("serve.cpu.yaml")
    built = serve_build(build_app(app.args), name=app.name)
    experts = {d.name: d.ray_actor_options for d in built.deployments if d.name.startswith("expert-")}
    assert set(experts) == {"expert-smollm2-135m", "expert-qwen2.5-coder-0.5b", "expert-gemma3-270m",
                            "expert-smollm2-135m-glider"}
    assert all(o.get("num_gpus", 0) == 0 and o["resources"] == {"expert_node": 1} for o in experts.values())
    gateway = next(d for d in built.deployments if d.name == "gateway").ray_actor_options
    assert gateway["resources"] == {"cpu_node": 1}
    assert load("serve.cpu.yaml")["http_options"]["host"] == "0.0.0.0"


def test_cpu_serve_config_is_the_embedded_default():
    """The same experts (but placement), router, reliability and retrieval as configs/default.yaml."""
    from coe.config import load_config, parse_config

    shipped = parse_config(serve_app("serve.cpu.yaml").args["inline"], "serve.cpu.yaml")
    default = load_config(ROOT / "configs" / "default.yaml")
    def experts(cfg):
        return [e.model_dump(exclude={"resources"}) for e in cfg.experts]

    assert experts(shipped) == experts(default)
    for section in ("router", "reliability", "retrieval", "memory", "auth"):
        assert getattr(shipped, section) == getattr(default, section), section


def test_cpu_serve_config_is_refused_without_keys(monkeypatch):
    """What the build task on a node without keys does (DEPLOY_FAILED): it names the fix."""
    from coe.api.auth import KeyConfigError
    from coe.serve.app import build_app

    monkeypatch.delenv("COE_API_KEYS")
    with pytest.raises(KeyConfigError, match="refusing to serve on 0.0.0.0 without API keys"):
        build_app(serve_app("serve.cpu.yaml").args)
