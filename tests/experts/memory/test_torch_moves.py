"""Real tier moves of a tiny random Llama: disk -> host via mmap into a meta module, host capture/restore."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experts.memory import torch_moves as tm

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = transformers.LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    return cfg, model, sorted(Path(folder).glob("*.safetensors"))


def logits(model):
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3, 4, 5]])).logits


def test_load_from_disk_rebuilds_the_same_model(tiny):
    cfg, model, files = tiny
    extra = tm.non_persistent_buffers(model)
    assert sorted(extra) == ["b:model.rotary_emb.inv_freq", "b:model.rotary_emb.original_inv_freq"]
    loaded = tm.load_from_disk(lambda: transformers.LlamaForCausalLM(cfg), files, extra)
    assert torch.equal(logits(loaded), logits(model))
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied, stored once
    assert tm.nbytes(loaded) == tm.nbytes(model)


def test_load_from_disk_without_the_kept_buffers_says_what_is_missing(tiny):
    cfg, _, files = tiny
    with pytest.raises(ValueError, match="rotary_emb.inv_freq"):
        tm.load_from_disk(lambda: transformers.LlamaForCausalLM(cfg), files)


def test_capture_and_restore_round_trip_without_copies_on_cpu(tiny):
    cfg, model, _ = tiny
    state = tm.capture(model)
    assert state["p:lm_head.weight"] is state["p:model.embed_tokens.weight"]
    assert tm.nbytes(state) == tm.nbytes(model)
    rebuilt = tm.restore(tm.meta_module(lambda: transformers.LlamaForCausalLM(cfg)), state)
    assert torch.equal(logits(rebuilt), logits(model))
    assert rebuilt.model.norm.weight.data_ptr() == model.model.norm.weight.data_ptr()
    assert tm.to_device(rebuilt, "cpu") is rebuilt
