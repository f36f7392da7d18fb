"""The checksummed ComPEFT artifact: compress a dense LoRA expert folder, load it back, refuse damage."""

import numpy as np
import pytest

from experts.embed.adapters import AdapterError
from experts.llm.lora_experts import load_lora_expert
from experts.lora.artifact import compress_expert, load_any_expert
from experts.lora.compeft import compress_matrix, decompress_matrix
from experts.train.llm_lora import LoraExpertTrainConfig, save_lora_expert


@pytest.fixture
def dense(tmp_path):
    rng = np.random.default_rng(0)
    weights = {}
    for layer in range(2):
        for mod, (d_in, d_out) in {"q_proj": (64, 64), "down_proj": (128, 64)}.items():
            weights[f"model.layers.{layer}.self_attn.{mod}.lora_A"] = rng.normal(size=(4, d_in)) * 0.1
            weights[f"model.layers.{layer}.self_attn.{mod}.lora_B"] = rng.normal(size=(d_out, 4)) * 0.01
    return save_lora_expert(tmp_path / "dense", weights, LoraExpertTrainConfig(),
                            {"name": "toy", "task": "t", "base_model": "registry:x"})


def test_compressed_loads_as_its_decompressed_matrices(dense, tmp_path):
    report = compress_expert(dense, tmp_path / "c", density=0.2)
    assert report["ratio"] > 2  # toy matrices: headers weigh; real adapters in README
    src, out = load_lora_expert(dense), load_any_expert(tmp_path / "c")
    assert out.name == "toy" and out.scaling == src.scaling and out.base_model == "registry:x"
    assert sorted(out.modules) == sorted(src.modules)
    for module, (a, b) in src.modules.items():
        assert np.array_equal(out.modules[module][0], decompress_matrix(compress_matrix(a, 0.2)))
        assert np.array_equal(out.modules[module][1], decompress_matrix(compress_matrix(b, 0.2)))


def test_unquantized_density_one_round_trips_exactly(dense, tmp_path):
    compress_expert(dense, tmp_path / "c", density=1.0, quantize=False)
    src, out = load_lora_expert(dense), load_any_expert(tmp_path / "c")
    for module, (a, b) in src.modules.items():
        assert np.array_equal(out.modules[module][0], a) and np.array_equal(out.modules[module][1], b)


def test_damaged_or_missing_artifacts_are_clear_errors(dense, tmp_path):
    compress_expert(dense, tmp_path / "c", density=0.5)
    weights = tmp_path / "c" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(AdapterError, match="sha256"):
        load_any_expert(tmp_path / "c")
    with pytest.raises(AdapterError, match="not found"):
        load_any_expert(tmp_path / "nowhere")
