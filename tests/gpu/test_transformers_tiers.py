"""Transformers backend tier moves on a real GPU: HBM is freed on offload, host copies are pinned, outputs survive."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from experts.llm.registry_models import resolve_model

    folder = tmp_path_factory.mktemp("llama")
    cfg = LlamaConfig(vocab_size=49152, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("registry:smollm2-135m-instruct")).save_pretrained(folder)
    return str(folder)


@pytest.mark.asyncio
async def test_device_host_disk_round_trip_on_gpu(model_dir):
    from experts.llm.base import BackendOptions, GenerationRequest, Message
    from experts.llm.transformers_backend import TransformersBackend

    async def answer(b):
        req = GenerationRequest(messages=(Message("user", "hello"),), max_tokens=8)
        return "".join([c.text async for c in b.generate(req)])

    b = TransformersBackend("gpu-llama", model_dir, BackendOptions(device="cuda"))
    await b.start()
    before = await answer(b)
    on_device = torch.cuda.memory_allocated()
    await b.to("host")
    assert torch.cuda.memory_allocated() < on_device - b.info.nbytes // 2
    assert all(t.is_pinned() for t in b._host_state.values())
    await b.to("device")
    assert await answer(b) == before
    await b.to("disk")
    await b.to("device")
    assert await answer(b) == before
