"""The multi-LoRA runtime on real SmolLM2-135M: same greedy tokens as peft alone, mixed batch = each row alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from experts.llm.lora_experts import LoraExpert
from experts.lora.runtime import AdapterMismatch, BatchRow, MultiLoraModel
from experts.train.llm_lora import lora_state

pytestmark = pytest.mark.slow

PROMPTS = ["Text: the boundary layer of a swept wing at supersonic speed\nTitle:",
           "The capital of France is", "Write one word about libraries:", "Claim: aspirin lowers fever\nTitle:"]


def _load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), tok


def _random_expert(model, seed: int) -> tuple[LoraExpert, object]:
    """A peft model with random B (seeded) and the same adapter as a LoraExpert."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
    from lora_helpers import random_peft

    peft_model = random_peft(model, seed, std=0.05).eval()
    state = lora_state(peft_model)
    modules = {k.removesuffix(".lora_A"): (state[k], state[k.removesuffix(".lora_A") + ".lora_B"])
               for k in state if k.endswith(".lora_A")}
    return LoraExpert(f"r{seed}", Path("."), modules, 16 / 4, "", {}), peft_model


def _greedy(model, tok, prompt: str, n: int = 12) -> list[int]:
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             pad_token_id=tok.eos_token_id, temperature=None, top_p=None, top_k=None)
    new = out[0, ids.shape[1]:].tolist()
    return new[:new.index(tok.eos_token_id)] if tok.eos_token_id in new else new


@pytest.fixture(scope="module")
def setup(smollm2_path):
    experts, peft_tokens = [], {}
    for seed in (1, 2, 3):
        model, tok = _load(smollm2_path)
        expert, peft_model = _random_expert(model, seed)
        experts.append(expert)
        peft_tokens[seed] = [_greedy(peft_model, tok, p) for p in PROMPTS]
    base, tok = _load(smollm2_path)
    plain = [_greedy(base, tok, p) for p in PROMPTS]
    runtime = MultiLoraModel(base, tok, slots=3, rank=8)  # rank 8 slots: the r=4 adapters are zero-padded
    for slot, e in enumerate(experts, start=1):
        runtime.check(e, e.name)
        runtime.load_slot(slot, runtime.host_copy(e), e.scaling)
    return runtime, tok, peft_tokens, plain


def _rows(tok, slots):
    return [BatchRow(s, tok(p)["input_ids"], 12) for s, p in zip(slots, PROMPTS, strict=True)]


def test_one_adapter_gives_the_greedy_tokens_of_peft_alone(setup):
    runtime, tok, peft_tokens, plain = setup
    for slot, seed in enumerate((1, 2, 3), start=1):
        for i, p in enumerate(PROMPTS):
            got = runtime.generate_batch([BatchRow(slot, tok(p)["input_ids"], 12)])[0].token_ids
            assert got == peft_tokens[seed][i], (seed, p)
    assert any(peft_tokens[1][i] != plain[i] for i in range(len(PROMPTS)))  # the adapters do change the output


def test_a_mixed_batch_gives_each_row_its_tokens_alone(setup):
    runtime, tok, peft_tokens, plain = setup
    slots = [1, 2, 3, 0]
    mixed = runtime.generate_batch(_rows(tok, slots))
    for row, slot, i in zip(mixed, slots, range(len(PROMPTS)), strict=True):
        expect = plain[i] if slot == 0 else peft_tokens[slot][i]
        assert row.token_ids == expect, (slot, PROMPTS[i])


def test_per_row_limits_and_stops(setup):
    runtime, tok, _, _ = setup
    rows = [BatchRow(1, tok(PROMPTS[0])["input_ids"], 3), BatchRow(2, tok(PROMPTS[1])["input_ids"], 9)]
    out = runtime.generate_batch(rows)
    assert len(out[0].token_ids) <= 3 and out[0].finish_reason in ("length", "stop")
    alone = runtime.generate_batch([rows[1]])[0]
    assert out[1].token_ids == alone.token_ids


def test_an_adapter_that_does_not_fit_the_base_is_refused_by_name(setup):
    runtime = setup[0]
    module = next(iter(runtime.layers))
    layer = runtime.layers[module]
    bad = LoraExpert("x", Path("."), {module: (np.zeros((4, layer.base.in_features + 1), np.float32),
                                               np.zeros((layer.base.out_features, 4), np.float32))}, 1.0, "", {})
    with pytest.raises(AdapterMismatch, match="expert 'wide'.*A \\(4, "):
        runtime.check(bad, "expert 'wide'")
    unknown = LoraExpert("y", Path("."), {"model.nowhere.q_proj": bad.modules[module]}, 1.0, "", {})
    with pytest.raises(AdapterMismatch, match="nowhere"):
        runtime.check(unknown, "expert 'y'")
    big = LoraExpert("z", Path("."), {module: (np.zeros((16, layer.base.in_features), np.float32),
                                               np.zeros((layer.base.out_features, 16), np.float32))}, 1.0, "", {})
    with pytest.raises(AdapterMismatch, match="rank 16"):
        runtime.check(big, "expert 'z'")
