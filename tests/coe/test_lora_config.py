"""LoRA experts as config: the compress-adapter command, and the vLLM engine arguments of a LoRA base (GPU path,
validated as config here)."""

from __future__ import annotations

import json
from pathlib import Path

from coe.cli import main
from coe.config import parse_config
from coe.lora_config import vllm_lora_engine_args
from experts.lora.artifact import load_any_expert

ROOT = Path(__file__).resolve().parents[2]
CISI = ROOT / "artifacts" / "lora-experts" / "cisi-title"


def test_compress_adapter_command_writes_a_loadable_artifact(tmp_path, capsys):
    assert main(["compress-adapter", str(CISI), "--density", "0.2", "--out", str(tmp_path / "c")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ratio"] >= 8 and report["density"] == 0.2
    expert = load_any_expert(tmp_path / "c")
    assert expert.name == "cisi-title" and len(expert.modules) == 210  # 7 linears x 30 layers of SmolLM2
    assert main(["compress-adapter", str(tmp_path / "nowhere")]) == 2


def test_vllm_lora_experts_validate_and_map_to_engine_args():
    cfg = parse_config({
        "experts": [{"name": "q", "model": "registry:qwen2.5-coder-0.5b-instruct", "backend": "vllm"},
                    *({"name": f"q-{i}", "base": "q", "backend": "vllm", "adapter": str(CISI)} for i in range(3))],
        "router": {"general_expert": "q"}, "memory": {"adapters": {"max_loras": 2, "max_cpu_loras": 8,
                                                                   "max_lora_rank": 16}}})
    loras = [e for e in cfg.experts if e.base]
    assert {e.pool_name for e in cfg.experts} == {"q"}
    a = cfg.memory.adapters
    assert vllm_lora_engine_args(cfg.expert("q"), loras, a.max_loras, a.max_cpu_loras, a.max_lora_rank) == {
        "enable_lora": True, "max_loras": 2, "max_cpu_loras": 8, "max_lora_rank": 16}


def test_a_max_lora_rank_vllm_refuses_is_a_clear_error_naming_the_base():
    import pytest

    cfg = parse_config({
        "experts": [{"name": "q", "model": "registry:qwen2.5-coder-0.5b-instruct", "backend": "vllm"},
                    {"name": "q-1", "base": "q", "backend": "vllm", "adapter": str(CISI)}],
        "router": {"general_expert": "q"}})
    with pytest.raises(ValueError, match="'q' on vLLM: memory.adapters.max_lora_rank 12 is not one vLLM accepts"):
        vllm_lora_engine_args(cfg.expert("q"), [cfg.expert("q-1")], 8, None, 12)
