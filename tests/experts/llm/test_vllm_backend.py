"""The vLLM backend on a real small model (SmolLM2-135M-Instruct); one engine for the whole module."""

import asyncio
import importlib.util

import pytest
import pytest_asyncio

from experts.llm.base import BackendError, GenerationRequest, LLMBackend, Message
from experts.llm.safetensors_stats import safetensors_stats
from experts.llm.vllm_backend import TierUnsupportedError, VLLMBackend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm (make install-vllm)"),
]
in_module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(smollm2_path):
    # Eager mode: torch.compile would add ~2 minutes of start-up on a small CPU for no test value.
    b = VLLMBackend("smollm2", smollm2_path, enforce_eager=True, max_model_len=1024)
    await b.start()
    yield b
    await b.shutdown()


def ask(text: str, **kw) -> GenerationRequest:
    return GenerationRequest(messages=(Message("user", text),), **kw)


async def collect(backend, req):
    chunks = [c async for c in backend.generate(req)]
    return "".join(c.text for c in chunks), chunks


@in_module_loop
async def test_generates_text_with_usage(backend):
    assert isinstance(backend, LLMBackend)
    text, chunks = await collect(backend, ask("Name three colours.", max_tokens=48))
    last = chunks[-1]
    assert text.strip()
    assert last.finish_reason in ("stop", "length")
    assert last.prompt_tokens == len(backend.prompt_ids(ask("Name three colours.")))
    assert 0 < last.completion_tokens <= 48


@in_module_loop
async def test_stream_deltas_concatenate_to_the_greedy_output(backend):
    req = ask("Write a Python function that reverses a list", max_tokens=32)
    text, chunks = await collect(backend, req)
    assert len([c for c in chunks if c.text]) > 3
    assert all(c.finish_reason is None for c in chunks[:-1])
    final_only = await _final_text(backend, req)
    assert text == final_only


async def _final_text(backend, req) -> str:
    """The same request through vLLM's non-streaming output mode, as the reference for the deltas."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    final_only = RequestOutputKind.FINAL_ONLY
    params = SamplingParams(max_tokens=req.max_tokens, temperature=0.0, output_kind=final_only)
    prompt = {"prompt_token_ids": backend.prompt_ids(req)}
    outs = [o async for o in backend.engine.generate(prompt, params, "reference")]
    return outs[-1].outputs[0].text


@in_module_loop
async def test_max_tokens_gives_length(backend):
    _, chunks = await collect(backend, ask("Write a long story about a dragon.", max_tokens=7))
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 7


@in_module_loop
async def test_stop_string_cuts_output(backend):
    req = ask("Count from 1 to 20, separated by commas.", max_tokens=80)
    full, _ = await collect(backend, req)
    assert "5" in full
    cut, chunks = await collect(backend, ask(req.messages[0].content, max_tokens=80, stop=("5",)))
    assert "5" not in cut and chunks[-1].finish_reason == "stop"
    assert full.startswith(cut) and len(cut) < len(full)


@in_module_loop
async def test_loglikelihoods_order_continuations(backend):
    good, bad, empty = await backend.loglikelihoods("The capital of France is", [" Paris", " banana", ""])
    assert good > bad and good < 0 and empty == 0.0


@in_module_loop
async def test_leaving_the_stream_aborts_the_request(backend):
    stream = backend.generate(ask("Write a very long story about the sea.", max_tokens=400))
    got = 0
    async for chunk in stream:
        got += bool(chunk.text)
        if got == 2:
            break
    await stream.aclose()
    for _ in range(50):
        if backend.engine.get_num_unfinished_requests() == 0:
            break
        await asyncio.sleep(0.1)
    assert backend.engine.get_num_unfinished_requests() == 0


@in_module_loop
async def test_cpu_build_stays_on_device(backend):
    if backend.info.extra.get("device") != "cpu":
        pytest.skip("the CPU build's behaviour; tests/gpu covers sleep mode")
    await backend.to("device")
    with pytest.raises(TierUnsupportedError, match="sleep mode"):
        await backend.to("host")
    assert backend.tier == "device" and isinstance(TierUnsupportedError("x"), BackendError)


def test_info_measures_the_weights_folder(smollm2_path):
    b = VLLMBackend("smollm2", smollm2_path)
    params, nbytes = safetensors_stats(smollm2_path)
    assert b.info.backend == "vllm" and b.tier == "disk"
    assert (b.info.params, b.info.nbytes) == (params, nbytes)
    assert 130e6 < params < 140e6 and nbytes == 2 * params  # bf16
