"""Weight size from safetensors headers, on tiny files written here."""

import numpy as np
from safetensors.numpy import save_file

from experts.llm.safetensors_stats import safetensors_stats


def test_sums_params_and_bytes_over_files(tmp_path):
    save_file({"a": np.zeros((2, 3), np.float32), "b": np.zeros(4, np.float16)}, tmp_path / "m-1.safetensors",
              metadata={"format": "pt"})
    save_file({"c": np.zeros((5,), np.int8)}, tmp_path / "m-2.safetensors")
    (tmp_path / "notes.bin").write_bytes(b"x" * 100)
    assert safetensors_stats(tmp_path) == (6 + 4 + 5, 6 * 4 + 4 * 2 + 5)


def test_not_a_folder_is_zero(tmp_path):
    assert safetensors_stats(tmp_path / "missing") == (0, 0)
    assert safetensors_stats("Qwen/Qwen2.5-7B-Instruct") == (0, 0)
