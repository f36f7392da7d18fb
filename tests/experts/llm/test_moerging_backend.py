"""The MoErging backend on the real SmolLM2 with random LoRA experts: routing trace, global scores, tier moves."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from lora_helpers import random_peft

from experts.llm.base import BackendOptions, GenerationRequest, Message
from experts.llm.moerging_backend import MoErgingBackend, request_text
from experts.llm.moerging_model import load_experts, save_gates
from experts.train.llm_lora import LoraExpertTrainConfig, load_causal_lm, lora_state, save_lora_expert


@pytest.fixture(scope="module")
def gates_artifact(smollm2_path, tmp_path_factory):
    """Two random LoRA experts and random gates saved as real artifacts (what `coe train glider --token` writes)."""
    root = tmp_path_factory.mktemp("moerging")
    model, _ = load_causal_lm(smollm2_path)
    cfg = LoraExpertTrainConfig()
    paths = []
    for i, name in enumerate(["aero", "library"]):
        peft_model = random_peft(model, seed=i, std=0.05)
        save_lora_expert(root / name, lora_state(peft_model), cfg, {"name": name, "task": name, "base_model": "s"})
        peft_model.unload()
        paths.append(str(root / name))
    experts = load_experts(paths)
    rng = np.random.default_rng(0)
    gates = {m: rng.normal(size=(2, a.shape[1])).astype(np.float32) for m, (a, _) in experts[0].modules.items()}
    instructions = {"aero": "Write the title of an aeronautics abstract about wings and airflow.",
                    "library": "Write the title of a library science abstract about catalogues."}
    save_gates(root / "gates", gates, np.zeros((2, 384), np.float32), experts, instructions, {"alpha": 5.0})
    return root / "gates"


def request(text: str, trace: bool) -> GenerationRequest:
    return GenerationRequest(messages=(Message("user", text),), max_tokens=8, routing_trace=trace)


async def complete(backend: MoErgingBackend, req: GenerationRequest):
    chunks = [c async for c in backend.generate(req)]
    return "".join(c.text for c in chunks), chunks[-1]


def test_generation_returns_the_routing_trace_and_survives_tier_moves(smollm2_path, gates_artifact):
    backend = MoErgingBackend("glider", smollm2_path, BackendOptions(dtype="float32"),
                              artifact=str(gates_artifact))
    assert backend.alpha == 5.0 and backend.top_k == 2  # the artifact's defaults

    async def scenario():
        await backend.start()
        text, last = await complete(backend, request("The lift of a swept wing at Mach 2.", trace=True))
        _, plain_last = await complete(backend, request("The lift of a swept wing at Mach 2.", trace=False))
        await backend.to("host")
        assert backend.tier == "host" and backend._moe is None
        await backend.to("device")
        again, _ = await complete(backend, request("The lift of a swept wing at Mach 2.", trace=False))
        return text, last, plain_last, again

    text, last, plain_last, again = asyncio.run(scenario())
    trace = last.routing_trace
    assert trace["experts"] == ["aero", "library"]
    assert abs(sum(trace["mean"]) - 1.0) < 1e-3  # top-2 of 2 experts, renormalised
    assert len(trace["modules"]) == 7 * 30 and all(len(w) == 2 for w in trace["modules"].values())
    g = trace["global_scores"]
    assert g[0] > g[1]  # the wing question is closer to the aeronautics instruction
    assert plain_last.routing_trace is None
    assert text and again == text  # greedy: the same answer after host -> device


def test_request_text_is_the_last_user_message():
    req = GenerationRequest(messages=(Message("system", "s"), Message("user", "a"), Message("assistant", "b"),
                                      Message("user", "c")))
    assert request_text(req) == "c"
