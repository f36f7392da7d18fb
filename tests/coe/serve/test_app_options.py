"""Deployment options come from the config: placement, replicas, autoscaling."""

from coe.config import parse_config
from coe.serve.app import pool_deployment_options


def cfg_with(**expert):
    return parse_config({"experts": [{"name": "a", "model": "x", **expert}], "router": {"general_expert": "a"}})


def test_fixed_replicas_and_placement():
    cfg = cfg_with(resources={"num_cpus": 2, "num_gpus": 1, "memory_bytes": 1024, "custom": {"expert_node": 1}},
                   autoscaling={"min_replicas": 2, "max_replicas": 2}, max_queued_requests=7)
    opts = pool_deployment_options("a", cfg.experts)
    assert opts["name"] == "expert-a"
    assert opts["num_replicas"] == 2 and "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1, "memory": 1024,
                                         "resources": {"expert_node": 1}}
    assert opts["max_queued_requests"] == 7


def test_autoscaling_when_bounds_differ():
    cfg = cfg_with(autoscaling={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3})
    opts = pool_deployment_options("a", cfg.experts)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3}


def test_gateway_fixed_replicas_and_placement():
    from coe.serve.app import gateway_deployment_options

    cfg = parse_config({"experts": [{"name": "a", "model": "x"}], "router": {"general_expert": "a"},
                        "server": {"gateway_replicas": 3,
                                   "gateway_resources": {"num_cpus": 1, "custom": {"cpu_node": 1}}}})
    opts = gateway_deployment_options(cfg)
    assert opts["num_replicas"] == 3 and "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 0, "resources": {"cpu_node": 1}}


def test_gateway_autoscaling_overrides_fixed_count():
    from coe.serve.app import gateway_deployment_options

    cfg = parse_config({"experts": [{"name": "a", "model": "x"}], "router": {"general_expert": "a"},
                        "server": {"gateway_replicas": 3, "gateway_autoscaling": {
                            "min_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 64}}})
    opts = gateway_deployment_options(cfg)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 64}
    assert opts["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0}


def test_relative_config_path_resolves_against_checkout_outside_it(tmp_path, monkeypatch):
    from coe.serve.app import config_path
    from experts.paths import REPO_ROOT

    monkeypatch.chdir(tmp_path)
    assert config_path("configs/default.yaml") == REPO_ROOT / "configs" / "default.yaml"
    (tmp_path / "mine.yaml").write_text("x: 1")
    assert config_path("mine.yaml").resolve() == tmp_path / "mine.yaml"
