"""The experts of one pool agree on its placement: checked at config load, the unset ones take the pool's."""

import pytest

from coe.config import ConfigError, parse_config


def pool_cfg(*experts):
    return parse_config({"experts": list(experts), "router": {"general_expert": experts[0]["name"]}})


def test_disagreeing_placement_names_pool_field_and_experts():
    with pytest.raises(ConfigError, match=r"pool 'p': its experts disagree on resources.*'a'.*'b'") as err:
        pool_cfg({"name": "a", "model": "x", "pool": "p", "resources": {"num_gpus": 1}},
                 {"name": "b", "model": "x", "pool": "p", "resources": {"num_gpus": 0.5}})
    assert "set resources on one of its experts" in str(err.value)


def test_disagreeing_request_limits_are_refused():
    with pytest.raises(ConfigError, match="disagree on max_queued_requests"):
        pool_cfg({"name": "a", "model": "x", "pool": "p", "max_queued_requests": 4},
                 {"name": "b", "model": "x", "pool": "p", "max_queued_requests": 5})


def test_placement_set_on_a_later_expert_is_the_pools():
    cfg = pool_cfg({"name": "a", "model": "x", "pool": "p"},
                   {"name": "b", "model": "x", "pool": "p", "resources": {"num_cpus": 2, "custom": {"gpu_node": 1}},
                    "autoscaling": {"min_replicas": 1, "max_replicas": 3}})
    a, b = cfg.experts
    assert a.resources.num_cpus == 2 and a.resources.custom == {"gpu_node": 1}
    assert a.autoscaling.max_replicas == 3
    assert a.resources is not b.resources  # a copy: the two stay independent objects


def test_same_placement_on_all_and_separate_pools_are_fine():
    cfg = pool_cfg({"name": "a", "model": "x", "pool": "p", "resources": {"num_cpus": 1}},
                   {"name": "b", "model": "x", "pool": "p", "resources": {"num_cpus": 1}},
                   {"name": "c", "model": "x", "resources": {"num_cpus": 3}})
    assert [e.resources.num_cpus for e in cfg.experts] == [1, 1, 3]


def test_a_lora_expert_joins_its_base_pool_and_must_agree(tmp_path):
    with pytest.raises(ConfigError, match="pool 'base': its experts disagree on max_ongoing_requests"):
        pool_cfg({"name": "base", "model": "x", "max_ongoing_requests": 2},
                 {"name": "tuned", "base": "base", "adapter": str(tmp_path), "max_ongoing_requests": 3})
