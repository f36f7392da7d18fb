"""Adapters through the tiers on a small random Llama: K device slots, host copies, disk; pins are never evicted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from experts.lora.artifact import compress_expert
from experts.lora.runtime import MultiLoraModel
from experts.lora.store import AdapterStore, UnknownAdapter
from experts.train.llm_lora import LoraExpertTrainConfig, save_lora_expert


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def write_adapters(model, folder: Path, n: int, rank: int = 4) -> list[Path]:
    """n random dense LoRA expert folders for every linear of `model`."""
    rng = np.random.default_rng(0)
    shapes = {name: (m.in_features, m.out_features) for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) and name != "lm_head"}
    out = []
    for i in range(n):
        weights = {}
        for name, (d_in, d_out) in shapes.items():
            weights[f"{name}.lora_A"] = rng.normal(size=(rank, d_in))
            weights[f"{name}.lora_B"] = rng.normal(size=(d_out, rank))
        out.append(save_lora_expert(folder / f"a{i}", weights, LoraExpertTrainConfig(), {"name": f"a{i}"}))
    return out


@pytest.fixture
def store(tmp_path):
    model = tiny_llama()
    paths = write_adapters(model, tmp_path, 6)
    runtime = MultiLoraModel(model, tokenizer=None, slots=2, rank=4)
    s = AdapterStore(runtime, host_adapters=2, acquire_timeout_s=10)
    compress_expert(paths[5], tmp_path / "a5c", density=0.5)
    for i, p in enumerate(paths):
        s.register(f"a{i}", p)
    s.register("a5c", tmp_path / "a5c")
    return s


def slot_weights(store: AdapterStore, slot: int) -> torch.Tensor:
    return torch.cat([layer.lora_B[slot].flatten() for layer in store.runtime.layers.values()])


async def test_more_adapters_than_slots_every_request_is_served_and_pins_hold(store):
    served: list[str] = []

    async def request(name: str) -> None:
        async with store.acquire(name) as slot:
            before = slot_weights(store, slot).clone()
            assert store.handles[name].tier == "device" and before.abs().sum() > 0
            await asyncio.sleep(0.01)  # others load and evict meanwhile
            assert store.handles[name].slot == slot  # a pinned adapter is never evicted
            assert torch.equal(slot_weights(store, slot), before)
            served.append(name)

    trace = [f"a{i % 6}" for i in range(30)] + ["a5c"] * 3
    await asyncio.gather(*(request(n) for n in trace))
    assert sorted(served) == sorted(trace)
    snap = store.residency()
    assert snap["residency"]["device"] <= 2 and snap["residency"]["host"] <= 2 and snap["slots_in_use"] <= 2
    assert snap["evictions"]["device"] > 0 and sum(v for k, v in snap["moves"].items() if k.startswith("disk->")) >= 7


async def test_evicted_adapter_comes_back_with_the_same_weights(store):
    async with store.acquire("a0") as slot:
        first = slot_weights(store, slot).clone()
    for name in ("a1", "a2", "a3"):
        async with store.acquire(name):
            pass
    assert store.handles["a0"].tier != "device"
    async with store.acquire("a0") as slot:
        assert torch.equal(slot_weights(store, slot), first)


async def test_unknown_adapter_is_a_clear_error(store):
    with pytest.raises(UnknownAdapter, match="nope"):
        async with store.acquire("nope"):
            pass
