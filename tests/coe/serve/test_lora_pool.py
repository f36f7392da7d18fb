"""Start-up errors of LoRA experts, each naming the expert: unknown base, missing folder, shapes that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coe.config import ConfigError, parse_config
from coe.serve.expert_pool import ExpertPool
from experts.llm.base import BackendError
from experts.train.llm_lora import LoraExpertTrainConfig, save_lora_expert

ROOT = Path(__file__).resolve().parents[3]
SMOL = "registry:smollm2-135m-instruct"


def config(experts):
    return parse_config({"experts": experts, "router": {"general_expert": experts[0]["name"]}})


def test_lora_experts_take_their_base_model_and_pool():
    cfg = config([{"name": "smol", "model": SMOL},
                  {"name": "a-lora", "base": "smol", "adapter": "artifacts/lora-experts/cisi-title"},
                  {"name": "b-lora", "base": SMOL, "adapter": "artifacts/lora-experts/cisi-title"}])
    a, b = cfg.expert("a-lora"), cfg.expert("b-lora")
    assert (a.model, a.pool_name) == (SMOL, "smol")
    assert (b.model, b.pool_name) == (SMOL, "lora-smollm2-135m-instruct")
    assert set(cfg.pools()) == {"smol", "lora-smollm2-135m-instruct"}


@pytest.mark.parametrize("expert, message", [
    ({"name": "x-lora", "base": "no-such-model", "adapter": "a"}, "expert 'x-lora': unknown base 'no-such-model'"),
    ({"name": "x-lora", "base": "registry:nope", "adapter": "a"}, "expert 'x-lora': unknown base"),
    ({"name": "x-lora", "base": "smol"}, "expert 'x-lora': a LoRA expert needs both base and adapter"),
    ({"name": "x-lora", "base": "smol", "adapter": "a", "pool": "elsewhere"}, "differs from its base's pool"),
])
def test_bad_lora_config_is_a_clear_error_naming_the_expert(expert, message):
    with pytest.raises(ConfigError, match=message):
        config([{"name": "smol", "model": SMOL}, expert])


async def start_pool(experts):
    pool = ExpertPool.__new__(ExpertPool)
    await pool.__init__("p", [e.model_dump(mode="json") for e in experts])  # type: ignore[misc]
    return pool


@pytest.mark.slow
async def test_missing_adapter_folder_fails_start_up_naming_the_expert(tmp_path):
    cfg = config([{"name": "smol", "model": SMOL, "dtype": "float32"},
                  {"name": "gone-lora", "base": "smol", "adapter": str(tmp_path / "missing")}])
    with pytest.raises(BackendError, match="'gone-lora': adapter folder .*missing not found"):
        await start_pool(cfg.experts)


@pytest.mark.slow
async def test_adapter_whose_shapes_do_not_fit_the_base_fails_start_up_naming_the_expert(tmp_path):
    rng = np.random.default_rng(0)
    weights = {"model.layers.0.self_attn.q_proj.lora_A": rng.normal(size=(4, 896)),  # Qwen's width, not SmolLM2's
               "model.layers.0.self_attn.q_proj.lora_B": rng.normal(size=(896, 4))}
    save_lora_expert(tmp_path / "wide", weights, LoraExpertTrainConfig(), {"name": "wide"})
    cfg = config([{"name": "smol", "model": SMOL, "dtype": "float32"},
                  {"name": "wide-lora", "base": "smol", "adapter": str(tmp_path / "wide")}])
    with pytest.raises(BackendError, match="LoRA expert 'wide-lora': model.layers.0.self_attn.q_proj has A"):
        await start_pool(cfg.experts)
