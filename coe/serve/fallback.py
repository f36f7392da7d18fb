"""Calls an expert pool with a deadline and a circuit breaker, and falls back to one configured expert.

A routed request (model="coe") whose expert fails, times out, is overloaded or has an open breaker goes to
`cfg.fallback_expert`; the decision returned says so (`kind` "fallback", `reason` starts with "fallback:").
Direct requests to a named expert never switch experts. Streams fall back only before their first item, so a
client never sees two experts in one answer; later failures end the stream with an SSE error event (gateway).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from ray.serve.exceptions import BackPressureError

from coe.api.errors import CoeError, ExpertUnavailable, Overloaded, Timeout
from coe.config import CoeConfig, ExpertConfig
from coe.serve.breaker import STATE_VALUE, BreakerBoard, CircuitBreaker
from coe.serve.messages import Refusal
from experts.llm.base import Chunk, GenerationRequest
from routers.base import RouteDecision

log = logging.getLogger(__name__)


@dataclass
class AttemptFailed(Exception):
    """One expert attempt that did not give an answer; `kind` is timeout, overloaded, failed or open."""

    expert: str
    kind: str
    detail: str = ""
    retry_after_s: float = 1.0

    def describe(self) -> str:
        return f"expert {self.expert!r} {self.kind}" + (f" ({self.detail})" if self.detail else "")


def classify(err: BaseException) -> str:
    """timeout, overloaded (a full queue, possibly wrapped by Ray) or failed."""
    if isinstance(err, TimeoutError):
        return "timeout"
    seen: BaseException | None = err
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, BackPressureError):
            return "overloaded"
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    return "failed"


def cancel_quietly(response: Any) -> None:
    """Best-effort cancel of a pool call; Ray's cancel() re-raises the call's own error (e.g. a full queue)."""
    try:
        response.cancel()
    except Exception as err:  # the call had already ended, with this error
        log.debug("cancel of a finished call", extra={"error": type(err).__name__})


def final_error(failures: list[AttemptFailed]) -> CoeError:
    """The client's answer when no expert could answer: 504, 429 or 503 after the last attempt's kind."""
    last = failures[-1]
    what = "; ".join(f.describe() for f in failures)
    retry = {"Retry-After": str(max(1, math.ceil(last.retry_after_s)))}
    if last.kind == "timeout":
        return Timeout(f"no answer in time: {what}", code="expert_timeout")
    if last.kind == "overloaded":
        return Overloaded(f"expert queue full: {what}", code="expert_overloaded", headers=retry)
    return ExpertUnavailable(f"no expert available: {what}", code="expert_unavailable", headers=retry)


def clamp_max_tokens(request: GenerationRequest, expert: ExpertConfig) -> GenerationRequest:
    """A fallback expert may have a lower cap than the one the request was checked against."""
    if request.max_tokens <= expert.max_tokens_limit:
        return request
    return replace(request, max_tokens=expert.max_tokens_limit)


class FallbackMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fallbacks = Counter("coe_fallbacks_total", "Requests answered by the fallback expert",
                                 ["expert", "fallback", "cause"], registry=registry)
        self.breaker = Gauge("coe_breaker_state", "Circuit breaker per expert: 0 closed, 1 half-open, 2 open",
                             ["expert"], registry=registry)


class ExpertCaller:
    """The gateway's way to an expert: deadline, breaker, fallback."""

    def __init__(self, cfg: CoeConfig, pools: dict[str, Any], registry: CollectorRegistry,
                 breakers: BreakerBoard | None = None) -> None:
        self.cfg = cfg
        self.pools = pools
        self.breakers = breakers or BreakerBoard(cfg.reliability.breaker)
        self.metrics = FallbackMetrics(registry)

    def candidates(self, decision: RouteDecision, routed: bool) -> list[ExpertConfig]:
        names = [decision.expert]
        if routed and self.cfg.fallback_expert != decision.expert:
            names.append(self.cfg.fallback_expert)
        return [self.cfg.expert(n) for n in names]

    def deadline(self, start: float) -> float:
        return start + self.cfg.server.request_timeout_s

    def attempt_timeout(self, expert: ExpertConfig, deadline: float) -> float:
        return min(expert.timeout_s or self.cfg.reliability.expert_timeout_s, deadline - time.monotonic())

    async def complete(self, decision: RouteDecision, routed: bool, payload: GenerationRequest,
                       deadline: float) -> tuple[Chunk, RouteDecision]:
        """A whole completion from the routed expert or, failing that, the fallback expert."""
        failures: list[AttemptFailed] = []
        for expert in self.candidates(decision, routed):
            try:
                result = await self._complete_once(expert, clamp_max_tokens(payload, expert), deadline)
                return result, self.answered_by(decision, expert, failures)
            except AttemptFailed as failure:
                failures.append(failure)
        raise final_error(failures)

    async def open_stream(self, decision: RouteDecision, routed: bool, payload: GenerationRequest,
                          deadline: float) -> tuple[ExpertStream, RouteDecision]:
        """A stream whose first item has arrived, so headers and status can still name the right expert."""
        failures: list[AttemptFailed] = []
        for expert in self.candidates(decision, routed):
            try:
                stream = await self._open_once(expert, clamp_max_tokens(payload, expert), deadline)
                return stream, self.answered_by(decision, expert, failures)
            except AttemptFailed as failure:
                failures.append(failure)
        raise final_error(failures)

    def answered_by(self, decision: RouteDecision, expert: ExpertConfig,
                    failures: list[AttemptFailed]) -> RouteDecision:
        if not failures:
            return decision
        first = failures[0]
        self.metrics.fallbacks.labels(first.expert, expert.name, first.kind).inc()
        log.warning("fallback", extra={"expert": first.expert, "fallback": expert.name, "cause": first.kind})
        return replace(decision, expert=expert.name, kind="fallback",
                       reason=f"fallback: {first.describe()}; routed: {decision.reason}")

    # ---- one attempt -----------------------------------------------------------
    def _admit(self, expert: ExpertConfig, deadline: float) -> tuple[CircuitBreaker, float]:
        breaker = self.breakers[expert.name]
        if not breaker.allow():
            raise AttemptFailed(expert.name, "open", "circuit open", breaker.retry_after_s())
        timeout = self.attempt_timeout(expert, deadline)
        if timeout <= 0:
            breaker.release()
            raise AttemptFailed(expert.name, "timeout", "request deadline passed")
        return breaker, timeout

    def record(self, expert: str, breaker: CircuitBreaker, outcome: str) -> None:
        """Outcome ok, failed, timeout, overloaded or cancelled; only faults of the expert count against it."""
        if outcome == "ok":
            breaker.success()
        elif outcome in ("failed", "timeout"):
            breaker.failure()
        else:
            breaker.release()
        self.metrics.breaker.labels(expert).set(STATE_VALUE[breaker.state])

    async def _complete_once(self, expert: ExpertConfig, payload: GenerationRequest, deadline: float) -> Chunk:
        breaker, timeout = self._admit(expert, deadline)
        response = None
        try:
            response = self.pools[expert.pool_name].generate.remote(expert.name, payload)
            result = await asyncio.wait_for(response, timeout)
        except asyncio.CancelledError:  # the client went away: stop the generation too
            if response is not None:
                cancel_quietly(response)
            self.record(expert.name, breaker, "cancelled")
            raise
        except Exception as err:
            kind = classify(err)
            if kind == "timeout":  # still running in the pool: stop it (off the loop, cancel may block)
                await asyncio.to_thread(cancel_quietly, response)
            self.record(expert.name, breaker, kind)
            log.warning("expert call failed", extra={"expert": expert.name, "kind": kind,
                                                     "error": type(err).__name__})
            raise AttemptFailed(expert.name, kind, type(err).__name__ if kind == "failed" else "") from None
        if isinstance(result, Refusal):  # the pool refused it (queue full, no device room): not the expert's fault
            self.record(expert.name, breaker, "overloaded")
            raise AttemptFailed(expert.name, "overloaded", result.error.message)
        self.record(expert.name, breaker, "ok")
        return result

    async def _open_once(self, expert: ExpertConfig, payload: GenerationRequest, deadline: float) -> ExpertStream:
        breaker, timeout = self._admit(expert, deadline)
        gen = None
        try:
            gen = self.pools[expert.pool_name].options(stream=True).stream.remote(expert.name, payload)
            first = await asyncio.wait_for(gen.__anext__(), timeout)
        except asyncio.CancelledError:
            if gen is not None:
                cancel_quietly(gen)
            self.record(expert.name, breaker, "cancelled")
            raise
        except Exception as err:
            kind = classify(err)
            if kind == "timeout":
                await asyncio.to_thread(cancel_quietly, gen)
            self.record(expert.name, breaker, kind)
            raise AttemptFailed(expert.name, kind, type(err).__name__ if kind == "failed" else "") from None
        if isinstance(first, Refusal):  # refused by the pool before generating (queue full, no device room)
            cancel_quietly(gen)
            self.record(expert.name, breaker, "overloaded")
            raise AttemptFailed(expert.name, "overloaded", first.error.message)
        # The whole stream is one attempt: it ends at the expert's timeout or the request deadline.
        return ExpertStream(self, expert, breaker, gen, first, min(deadline, time.monotonic() + timeout))


class ExpertStream:
    """The items of an opened stream; mid-stream failures become CoeErrors, the pool call is always cancelled."""

    def __init__(self, caller: ExpertCaller, expert: ExpertConfig, breaker: CircuitBreaker, gen: Any,
                 first: Chunk, deadline: float) -> None:
        self.caller, self.expert, self.breaker = caller, expert, breaker
        self.gen, self.first, self.deadline = gen, first, deadline

    async def items(self) -> AsyncIterator[Chunk]:
        outcome = "cancelled"
        try:
            item = self.first
            while True:
                yield item
                if item.finish_reason:
                    outcome = "ok"
                    return
                item = await asyncio.wait_for(self.gen.__anext__(), self.deadline - time.monotonic())
        except StopAsyncIteration:
            outcome = "ok"
        except TimeoutError:
            outcome = "timeout"
            raise Timeout(f"expert {self.expert.name!r} did not finish within its timeout",
                          code="expert_timeout") from None
        except Exception as err:
            outcome = "failed"
            log.warning("stream failed", extra={"expert": self.expert.name, "error": type(err).__name__})
            raise ExpertUnavailable(f"expert {self.expert.name!r} failed mid-stream: {type(err).__name__}",
                                    code="expert_failed") from None
        finally:
            cancel_quietly(self.gen)
            self.caller.record(self.expert.name, self.breaker, outcome)
