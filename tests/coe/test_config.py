from pathlib import Path

import pytest
import yaml

from coe.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def minimal(**over):
    cfg = {
        "experts": [{"name": "a", "model": "m/a"}, {"name": "b", "model": "m/b"}],
        "router": {"general_expert": "a"},
    }
    cfg.update(over)
    return cfg


@pytest.mark.parametrize("name", ["default.yaml", "gpu.example.yaml", "gpu.outcomes.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.router.general_expert in cfg.expert_names
    assert len(cfg.experts) >= 3


def test_default_serves_three_distinct_cpu_experts_on_loopback():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert {e.backend for e in cfg.experts} == {"transformers"}
    assert len({e.model for e in cfg.experts}) == 3
    assert cfg.server.host == "127.0.0.1"
    assert cfg.ray.address is None


def test_gpu_example_uses_vllm_with_real_model_ids():
    cfg = load_config(ROOT / "configs" / "gpu.example.yaml")
    assert {e.backend for e in cfg.experts} == {"vllm"}
    assert "Qwen/Qwen2-7B-Instruct" in {e.model for e in cfg.experts}


def test_error_names_file_and_field(tmp_path):
    bad = minimal()
    bad["experts"][1]["backend"] = "tensorrt"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "experts.1.backend" in str(err.value)


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="server.prot"):
        parse_config(minimal(server={"prot": 80}))


def test_general_expert_must_exist():
    with pytest.raises(ConfigError, match="general_expert 'zzz'"):
        parse_config(minimal(router={"general_expert": "zzz"}))


def test_category_map_must_name_experts():
    with pytest.raises(ConfigError, match="category_map names unknown experts"):
        parse_config(minimal(router={"general_expert": "a", "category_map": {"math": "nope"}}))


def test_duplicate_and_reserved_names():
    with pytest.raises(ConfigError, match="repeated"):
        parse_config(minimal(experts=[{"name": "a", "model": "x"}, {"name": "a", "model": "y"}]))
    with pytest.raises(ConfigError, match="reserved"):
        parse_config(minimal(experts=[{"name": "a", "model": "x"}, {"name": "coe", "model": "y"}]))


def test_bad_names_and_limits():
    with pytest.raises(ConfigError, match="experts.0.name"):
        parse_config(minimal(experts=[{"name": "../etc", "model": "x"}]))
    with pytest.raises(ConfigError, match="default_max_tokens"):
        parse_config(minimal(experts=[{"name": "a", "model": "x", "default_max_tokens": 900}]))
    with pytest.raises(ConfigError, match="min_replicas"):
        parse_config(minimal(experts=[{"name": "a", "model": "x",
                                       "autoscaling": {"min_replicas": 3, "max_replicas": 2}}]))


def test_yaml_syntax_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("experts: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_pools_group_experts():
    cfg = parse_config(minimal(experts=[{"name": "a", "model": "x", "pool": "p"},
                                        {"name": "b", "model": "y", "pool": "p"},
                                        {"name": "c", "model": "z"}]))
    assert {k: [e.name for e in v] for k, v in cfg.pools().items()} == {"p": ["a", "b"], "c": ["c"]}
