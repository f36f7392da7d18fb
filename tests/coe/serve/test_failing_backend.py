"""The tests' misbehaving backends (failing_backend.py) on the real SmolLM2-135M: what the reliability e2e relies on."""

import pytest

from coe.config import ExpertConfig
from coe.serve.backends import build_backend
from experts.llm.base import BackendError, GenerationRequest, Message

SMOL = "registry:smollm2-135m-instruct"
FAILING = "tests.coe.serve.failing_backend"


def ask(text: str, **kw) -> GenerationRequest:
    return GenerationRequest(messages=(Message("user", text),), **kw)


async def collect(backend, req) -> str:
    return "".join([c.text async for c in backend.generate(req)])


@pytest.mark.slow
async def test_broken_always_raises_and_delegates_the_rest():
    b = build_backend(ExpertConfig(name="broken", model=SMOL, backend=f"{FAILING}:broken"))
    assert b.info.backend == "transformers" and b.tier == "disk"
    await b.start()
    assert b.tier == "device"
    with pytest.raises(BackendError, match="'broken' is configured to fail"):
        await collect(b, ask("hi", max_tokens=2))
    await b.to("disk")


@pytest.mark.slow
async def test_flaky_fails_while_its_switch_file_exists_then_recovers(tmp_path):
    switch = tmp_path / "fail"
    b = build_backend(ExpertConfig(name="flaky", model=SMOL, backend=f"{FAILING}:flaky",
                                   backend_options={"switch_file": str(switch)}))
    await b.start()
    switch.touch()
    with pytest.raises(BackendError, match="while .* exists"):
        await collect(b, ask("hi", max_tokens=2))
    switch.unlink()
    assert await collect(b, ask("hi", max_tokens=2))
    await b.to("disk")
