"""Deployment options come from the config: placement, replicas, autoscaling, in one function."""

from coe.config import parse_config
from coe.serve.deployment_options import DEFAULT_DEPLOYMENT_OPTIONS, get_deployment_options


def cfg_with(**expert):
    return parse_config({"experts": [{"name": "a", "model": "x", **expert}], "router": {"general_expert": "a"}})


def test_fixed_replicas_and_placement():
    cfg = cfg_with(resources={"num_cpus": 2, "num_gpus": 1, "memory_bytes": 1024, "custom": {"expert_node": 1}},
                   autoscaling={"min_replicas": 2, "max_replicas": 2}, max_queued_requests=7)
    opts = get_deployment_options(cfg)["expert-a"]
    assert opts["name"] == "expert-a"
    assert opts["num_replicas"] == 2 and "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1, "memory": 1024,
                                         "resources": {"expert_node": 1}}
    assert opts["max_queued_requests"] == 7
    assert opts["health_check_period_s"] == DEFAULT_DEPLOYMENT_OPTIONS["pool"]["health_check_period_s"]


def test_autoscaling_when_bounds_differ():
    cfg = cfg_with(autoscaling={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3})
    opts = get_deployment_options(cfg)["expert-a"]
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3}


def test_gateway_fixed_replicas_and_placement():
    cfg = parse_config({"experts": [{"name": "a", "model": "x"}], "router": {"general_expert": "a"},
                        "server": {"gateway_replicas": 3,
                                   "gateway_resources": {"num_cpus": 1, "custom": {"cpu_node": 1}}}})
    opts = get_deployment_options(cfg)["gateway"]
    assert opts["num_replicas"] == 3 and "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 0, "resources": {"cpu_node": 1}}


def test_gateway_autoscaling_overrides_fixed_count():
    cfg = parse_config({"experts": [{"name": "a", "model": "x"}], "router": {"general_expert": "a"},
                        "server": {"gateway_replicas": 3, "gateway_autoscaling": {
                            "min_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 64}}})
    opts = get_deployment_options(cfg)["gateway"]
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 64}
    assert opts["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0}


def test_every_deployment_is_named_once_pools_retriever_gateway():
    cfg = parse_config({"experts": [{"name": "a", "model": "x"}, {"name": "b", "model": "x", "pool": "shared"},
                                    {"name": "c", "model": "x", "pool": "shared"}],
                        "router": {"general_expert": "a"}})
    opts = get_deployment_options(cfg)
    assert list(opts) == ["expert-a", "expert-shared", "gateway"]
    assert all(o["name"] == n for n, o in opts.items())
    assert opts["gateway"]["max_ongoing_requests"] == 256
    assert opts["gateway"]["graceful_shutdown_timeout_s"] == 30

