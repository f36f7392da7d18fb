"""vLLM sleep levels on a GPU: weights leave and come back, and greedy output does not change."""

import importlib.util

import pytest
import pytest_asyncio

from experts.llm.base import GenerationRequest, Message
from experts.llm.vllm_backend import VLLMBackend


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
    pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(smollm2_path):
    b = VLLMBackend("smollm2", smollm2_path, gpu_memory_utilization=0.2, max_model_len=1024)
    await b.start()
    yield b
    await b.shutdown()


async def greedy(backend) -> str:
    req = GenerationRequest(messages=(Message("user", "Name three colours."),), max_tokens=24)
    return "".join([c.text async for c in backend.generate(req)])


def used_bytes() -> int:
    import torch

    free, total = torch.cuda.mem_get_info()
    return total - free


@pytest.mark.parametrize("tier", ["host", "disk"])
async def test_sleep_and_wake_keep_outputs(backend, tier):
    before = await greedy(backend)
    awake = used_bytes()
    await backend.to(tier)
    assert backend.tier == tier
    assert used_bytes() < awake - backend.info.nbytes // 2  # the weights really left the GPU
    await backend.to("device")
    assert backend.tier == "device"
    assert await greedy(backend) == before


async def test_host_to_disk_and_back(backend):
    before = await greedy(backend)
    await backend.to("host")
    await backend.to("disk")
    await backend.to("device")
    assert await greedy(backend) == before
