"""GLIDER's llm instruction mode in the gateway: the writer expert is called through its pool's handle like any
request, so it shares that pool's replicas, queue and memory tiers instead of a private model copy per gateway."""

from __future__ import annotations

import logging
from typing import Any

from coe.serve.messages import Refusal
from experts.llm.base import Chunk
from routers.glider_instructions import clean_instruction, instruction_request

log = logging.getLogger(__name__)


class PoolWriter:
    """InstructionWriter over an expert pool's DeploymentHandle. Called from the router's worker thread (never the
    replica's event loop), so it may block on the handle; a failure or timeout gives None: the router then scores
    that request on the prompt itself (the cheap mode) and asks again for the task's next request."""

    def __init__(self, pool: Any, expert: str, timeout_s: float, max_tokens: int = 48) -> None:
        self.pool = pool
        self.expert = expert
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.failures = 0

    def __call__(self, examples: list[str]) -> str | None:
        try:
            out = self.pool.generate.remote(self.expert, instruction_request(examples, self.max_tokens)).result(
                timeout_s=self.timeout_s)
        except Exception as err:  # timeout, a dead replica, an engine error: routing must still answer
            return self._failed(f"{type(err).__name__}: {err}")
        if isinstance(out, Refusal):  # the pool's queue is full or no device room came in time
            return self._failed(f"{type(out.error).__name__}: {out.error.message}")
        if not isinstance(out, Chunk):
            return self._failed(f"unexpected answer {type(out).__name__}")
        return clean_instruction(out.text)

    def _failed(self, why: str) -> str | None:
        """Counts and logs the failure; None: no instruction for this request."""
        self.failures += 1
        log.warning("glider instruction writer failed; routing on the prompt",
                    extra={"expert": self.expert, "error": why[:300]})
        return None
