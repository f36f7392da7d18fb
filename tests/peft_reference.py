"""The reference a LoRA expert is checked against: greedy text of the base + one adapter under peft, float32.

Shared by the pool-level (vLLM) and Serve-level LoRA tests; importable as `peft_reference` because tests/ holds the
root conftest (pytest puts it on sys.path)."""

from __future__ import annotations

from pathlib import Path


def peft_alone(base: str, adapter: Path, prompt: str, tokens: int = 12) -> str:
    """Greedy text of `base` (a local model folder) + this adapter alone, chat template as the backends render it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from experts.llm.lora_experts import PEFT_PREFIX, load_lora_expert

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    expert = load_lora_expert(adapter)
    spec = expert.meta["lora"]
    peft_model = get_peft_model(model, LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], lora_dropout=0.0,
                                                  target_modules=spec["target_modules"]))
    for module, (a, b) in expert.modules.items():
        layer = peft_model.get_submodule(PEFT_PREFIX + module)
        layer.lora_A["default"].weight.data.copy_(torch.from_numpy(a))
        layer.lora_B["default"].weight.data.copy_(torch.from_numpy(b))
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                  do_sample=False, temperature=None, top_p=None, top_k=None,
                                  pad_token_id=tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
