"""ExpertCaller without Ray: fake pool handles that answer, fail, hang or push back."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from ray.serve.exceptions import BackPressureError

from coe.api.errors import ExpertUnavailable, Overloaded, Timeout
from coe.config import parse_config
from coe.serve.fallback import ExpertCaller, clamp_max_tokens
from coe.serve.messages import Refusal
from experts.llm.base import Chunk, GenerationRequest
from routers.base import RouteDecision

CFG = parse_config({
    "experts": [{"name": "general", "model": "x", "max_tokens_limit": 8, "default_max_tokens": 8},
                {"name": "coder", "model": "x", "timeout_s": 0.2}],
    "router": {"general_expert": "general"},
    "reliability": {"breaker": {"failure_threshold": 2, "reset_after_s": 60}},
})
ANSWER = Chunk(text="ok", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
REFUSAL = Refusal(Overloaded("expert queue full (4 waiting)", "model"))


class FakeResponse:
    def __init__(self, coro):
        self.task = asyncio.ensure_future(coro)
        self.cancelled = False

    def __await__(self):
        return self.task.__await__()

    def cancel(self):  # like Ray's: re-raises the error of a call that already failed
        self.cancelled = True
        if self.task.done() and not self.task.cancelled() and self.task.exception():
            raise self.task.exception()
        self.task.cancel()


class FakeStream(FakeResponse):
    def __init__(self, items, fail_after=None):
        self.items, self.fail_after, self.cancelled = list(items), fail_after, False

    async def __anext__(self):
        if self.fail_after is not None and self.fail_after == 0:
            raise RuntimeError("boom")
        if self.fail_after is not None:
            self.fail_after -= 1
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)

    def cancel(self):
        self.cancelled = True


class FakePool:
    """`behaviour` is ok, fail, hang, full (Serve's back-pressure), refuse (the pool's own Refusal) or
    stream-fail; records every call."""

    def __init__(self, behaviour="ok"):
        self.behaviour, self.calls, self.responses = behaviour, [], []
        self.generate = self.stream = self

    def options(self, stream=False, **_):
        self.streaming = stream
        return self

    def remote(self, expert, payload):
        assert isinstance(payload, GenerationRequest)  # typed across the Ray boundary
        self.calls.append((expert, payload.max_tokens))
        if self.behaviour == "stream-fail":
            return FakeStream([Chunk(text="ok")] * 3, fail_after=2)
        if self.behaviour == "stream-refuse":
            return FakeStream([REFUSAL])
        if self.behaviour == "ok" and getattr(self, "streaming", False):
            return FakeStream([ANSWER])
        resp = FakeResponse(self.run())
        self.responses.append(resp)
        return resp

    async def run(self):
        if self.behaviour == "fail":
            raise RuntimeError("backend exploded")
        if self.behaviour == "full":
            raise BackPressureError(num_queued_requests=4, max_queued_requests=4)
        if self.behaviour == "hang":
            await asyncio.sleep(60)
        if self.behaviour == "refuse":
            return REFUSAL
        return ANSWER


def caller(general="ok", coder="ok"):
    pools = {"general": FakePool(general), "coder": FakePool(coder)}
    return ExpertCaller(CFG, pools, CollectorRegistry()), pools


ROUTED = RouteDecision(expert="coder", category="code", confidence=0.9, reason="category=code p=0.90")
PAYLOAD = GenerationRequest(messages=(), max_tokens=100)


def deadline(s=5.0):
    import time

    return time.monotonic() + s


async def test_healthy_expert_answers_without_fallback():
    c, pools = caller()
    result, decision = await c.complete(ROUTED, True, PAYLOAD, deadline())
    assert result == ANSWER and decision == ROUTED and decision.kind == "routed"
    assert pools["coder"].calls == [("coder", 100)] and pools["general"].calls == []


@pytest.mark.parametrize("behaviour,kind", [("fail", "failed (RuntimeError)"), ("hang", "timeout"),
                                            ("full", "overloaded"),
                                            ("refuse", "overloaded (expert queue full (4 waiting))")])
async def test_failing_expert_falls_back_and_says_why(behaviour, kind):
    c, pools = caller(coder=behaviour)
    result, decision = await c.complete(ROUTED, True, PAYLOAD, deadline())
    assert result == ANSWER and decision.expert == "general" and decision.kind == "fallback"
    assert decision.reason == f"fallback: expert 'coder' {kind}; routed: category=code p=0.90"
    assert pools["general"].calls == [("general", 8)]  # clamped to the fallback's max_tokens_limit
    if behaviour == "hang":
        assert pools["coder"].responses[0].cancelled  # a timed-out call is cancelled, not left running


async def test_direct_requests_never_switch_experts():
    c, pools = caller(coder="fail")
    with pytest.raises(ExpertUnavailable, match="coder") as err:
        await c.complete(ROUTED, False, PAYLOAD, deadline())
    assert err.value.status == 503 and "Retry-After" in err.value.headers
    assert pools["general"].calls == []


@pytest.mark.parametrize("general,error", [("fail", ExpertUnavailable), ("hang", Timeout), ("full", Overloaded)])
async def test_both_failing_maps_to_the_last_failure(general, error):
    c, _ = caller(general=general, coder="fail")
    with pytest.raises(error):
        await c.complete(ROUTED, True, PAYLOAD, deadline(0.5))


async def test_breaker_opens_and_skips_the_expert():
    c, pools = caller(coder="fail")
    for _ in range(2):
        await c.complete(ROUTED, True, PAYLOAD, deadline())
    assert c.breakers.snapshot()["coder"] == "open"
    _, decision = await c.complete(ROUTED, True, PAYLOAD, deadline())
    assert decision.reason.startswith("fallback: expert 'coder' open (circuit open)")
    assert len(pools["coder"].calls) == 2  # the open breaker kept the third request away


@pytest.mark.parametrize("behaviour", ["full", "refuse"])
async def test_overload_does_not_open_the_breaker(behaviour):
    c, _ = caller(coder=behaviour)
    for _ in range(4):
        await c.complete(ROUTED, True, PAYLOAD, deadline())
    assert c.breakers.snapshot()["coder"] == "closed"


async def test_a_stream_refused_before_its_first_chunk_falls_back():
    c, pools = caller(coder="stream-refuse")
    stream, decision = await c.open_stream(ROUTED, True, PAYLOAD, deadline())
    assert decision.expert == "general" and decision.kind == "fallback"
    assert decision.reason.startswith("fallback: expert 'coder' overloaded (expert queue full")
    assert [item async for item in stream.items()] == [ANSWER]
    assert c.breakers.snapshot()["coder"] == "closed"


async def test_a_refusal_with_no_fallback_left_is_the_clients_429():
    c, _ = caller(coder="refuse")
    with pytest.raises(Overloaded, match="expert queue full") as err:
        await c.complete(ROUTED, False, PAYLOAD, deadline())
    assert err.value.status == 429 and err.value.headers == {"Retry-After": "1"}


async def test_stream_failing_after_start_raises_coe_error_and_cancels():
    c, pools = caller(coder="stream-fail")
    stream, decision = await c.open_stream(ROUTED, False, PAYLOAD, deadline())
    got = []
    with pytest.raises(ExpertUnavailable, match="mid-stream: RuntimeError"):
        async for item in stream.items():
            got.append(item)
    assert len(got) == 2 and stream.gen.cancelled


def test_clamp_max_tokens():
    assert clamp_max_tokens(PAYLOAD, CFG.expert("general")) == GenerationRequest(messages=(), max_tokens=8)
    small = GenerationRequest(messages=(), max_tokens=3)
    assert clamp_max_tokens(small, CFG.expert("general")) is small


def test_wrapped_backpressure_counts_as_overload():
    from coe.serve.fallback import classify

    try:
        try:
            raise BackPressureError(num_queued_requests=1, max_queued_requests=1)
        except BackPressureError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert classify(outer) == "overloaded"
    assert classify(TimeoutError()) == "timeout" and classify(ValueError()) == "failed"
