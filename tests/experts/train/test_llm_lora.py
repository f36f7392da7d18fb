"""LoRA experts on the real SmolLM2: training round trip, the MoErging model against peft, gates, unwrap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lora_helpers import random_peft

from experts.embed.adapters import AdapterError
from experts.llm.lora_experts import LoraExpert, load_lora_expert
from experts.llm.moerging_model import MoErgingModel, load_gates, save_gates
from experts.llm.tasks import Example
from experts.train.llm_gates import GateTrainConfig, train_gates
from experts.train.llm_lora import (
    LoraExpertTrainConfig,
    default_lora,
    encode_examples,
    load_causal_lm,
    lora_state,
    save_lora_expert,
    train_lora_expert,
)

DATA = [Example("Text: lift of a swept wing at high speed\nTitle:", " swept wing lift"),
        Example("Text: catalogue use in a public library\nTitle:", " library catalogues"),
        Example("Text: fatty acids in maternal plasma\nTitle:", " maternal plasma lipids")]


@pytest.fixture(scope="module")
def lm(smollm2_path):
    return load_causal_lm(smollm2_path)


def random_expert(model, name: str, seed: int) -> tuple[LoraExpert, object]:
    """A random LoRA on every linear layer as a LoraExpert, and the peft model it came from."""
    peft_model = random_peft(model, seed)
    state = lora_state(peft_model)
    modules = {k.removesuffix(".lora_A"): (state[k], state[k.replace(".lora_A", ".lora_B")])
               for k in state if k.endswith(".lora_A")}
    spec = default_lora()
    return LoraExpert(name, Path(name), modules, spec.alpha / spec.r, "test", {}), peft_model


def test_labels_cover_only_the_target_tokens(lm):
    model, tok = lm
    batch = encode_examples(tok, DATA[:2], max_length=64)
    labels, mask = batch["labels"], batch["attention_mask"]
    for row, ex in enumerate(DATA[:2]):
        target = tok(ex.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert labels[row][labels[row] != -100].tolist() == target
        length = len(tok(ex.prompt, add_special_tokens=False)["input_ids"]) + len(target)
        assert int(mask[row].sum()) == length and bool((labels[row][length:] == -100).all())
    cut = encode_examples(tok, DATA[:1], max_length=5)
    assert cut["input_ids"].shape[1] == 5  # cut from the left: the target survives


def test_training_lowers_the_loss_saves_and_loads(lm, tmp_path):
    model, tok = lm
    cfg = LoraExpertTrainConfig(steps=12, batch_size=3, lr=5e-3)
    before = [p.detach().clone() for p in model.parameters()]
    weights, stats = train_lora_expert(model, tok, DATA, cfg)
    assert stats["loss_last10"] < stats["loss_first10"]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # base untouched
    assert not any("lora" in n for n, _ in model.named_modules())  # unloaded: the model is plain again
    assert len(weights) == 2 * 7 * model.config.num_hidden_layers
    save_lora_expert(tmp_path / "x", weights, cfg, {"name": "x", "task": "t", "base_model": "smol"})
    expert = load_lora_expert(tmp_path / "x")
    a, b = expert.modules["model.layers.0.self_attn.q_proj"]
    assert a.shape == (4, model.config.hidden_size) and b.shape == (model.config.hidden_size, 4)
    assert np.allclose(a, weights["model.layers.0.self_attn.q_proj.lora_A"], atol=1e-3)  # float16 on disk
    assert expert.scaling == 4.0 and expert.base_model == "smol"
    (tmp_path / "x" / "meta.json").write_text("{}")
    with pytest.raises(AdapterError, match="sha256"):
        load_lora_expert(tmp_path / "x")


def test_moerging_model_with_one_expert_at_weight_one_equals_peft(lm):
    model, tok = lm
    ids = tok("Text: wing flutter at transonic speed\nTitle:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    expert, peft_model = random_expert(model, "a", seed=1)
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
    peft_model.unload()
    mm = MoErgingModel(model, [expert])
    with torch.no_grad():
        routed = model(input_ids=ids).logits  # one expert, top-k of one: weight 1 at every token
        mm.fix_weights([0.0])
        base = model(input_ids=ids).logits
    assert torch.allclose(routed, expected, atol=1e-4)
    assert not torch.allclose(routed, plain, atol=1e-3)
    assert torch.allclose(base, plain, atol=1e-5)
    mm.unwrap()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, plain, atol=1e-6)


def test_gates_train_per_expert_and_round_trip(lm, tmp_path):
    model, tok = lm
    experts = []
    for i in range(2):
        e, peft_model = random_expert(model, f"e{i}", seed=10 + i)
        peft_model.unload()
        experts.append(e)
    mm = MoErgingModel(model, experts, alpha=0.0, top_k=2)
    stats = train_gates(mm, tok, [DATA[:2], DATA[2:]], GateTrainConfig(steps=3, rows_per_expert=1, lr=1e-2))
    gates = mm.gates()
    assert stats["steps"] == 3 and all(np.abs(g).sum() > 0 for g in gates.values())
    assert all(m.train_rows is None and not m.gates.requires_grad for m in mm.modules.values())
    mm.capture(True)
    ids = tok("Text: lift\nTitle:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        model(input_ids=ids)
    trace = mm.trace()
    assert trace["experts"] == ["e0", "e1"] and abs(sum(trace["mean"]) - 1.0) < 1e-3
    emb = np.eye(2, 8, dtype=np.float32)
    save_gates(tmp_path / "g", gates, emb, experts, {"e0": "one", "e1": "two"}, {"alpha": 3.0})
    art = load_gates(tmp_path / "g")
    assert art.experts == ["e0", "e1"] and art.instructions == {"e0": "one", "e1": "two"}
    assert np.allclose(art.embeddings, emb)
    assert all(np.allclose(art.gates[k], gates[k], atol=1e-6) for k in gates)
    with pytest.raises(ValueError, match="no instruction"):
        save_gates(tmp_path / "h", gates, emb, experts, {"e0": "one"}, {})
    mm.unwrap()


def test_gate_training_forward_matches_the_sigmoid_gate_by_hand():
    from experts.llm.moerging import LoRAWeights, MoErgingLinear

    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    loras = [LoRAWeights(torch.randn(2, 6), torch.randn(5, 2), 2.0) for _ in range(3)]
    layer = MoErgingLinear(base, loras, torch.randn(3, 6))
    h = torch.randn(2, 4, 6)
    rows = torch.tensor([2, 0])
    with torch.no_grad():
        got = layer.gate_training_forward(h, rows)
        for b, e in enumerate(rows.tolist()):
            gate = torch.sigmoid(h[b] @ layer.gates[e])
            want = base(h[b]) + (gate * 2.0)[:, None] * (h[b] @ loras[e].A.T @ loras[e].B.T)
            assert torch.allclose(got[b], want, atol=1e-5)
