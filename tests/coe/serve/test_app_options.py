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
