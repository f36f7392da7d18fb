"""GLIDER's llm instruction mode in the gateway: the writer expert is called through its pool's handle like any
request, so it shares that pool's replicas, queue and memory tiers instead of a private model copy per gateway."""

from __future__ import annotations

import logging
from typing import Any

from routers.glider_instructions import WRITER_PROMPT, clean_instruction, instruction_request

log = logging.getLogger(__name__)


def writer_payload(examples: list[str], max_tokens: int = 48, prompt: str = WRITER_PROMPT) -> dict[str, Any]:
    """The pool payload (what the gateway sends for a chat request) of GLIDER's instruction request."""
    req = instruction_request(examples, max_tokens, prompt)
    return {"messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "max_tokens": req.max_tokens, "temperature": req.temperature, "top_p": req.top_p,
            "stop": list(req.stop), "seed": req.seed}


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
            out = self.pool.generate.remote(self.expert, writer_payload(examples, self.max_tokens)).result(
                timeout_s=self.timeout_s)
        except Exception as err:  # timeout, a dead replica, an engine error: routing must still answer
            return self._failed(f"{type(err).__name__}: {err}")
        if not isinstance(out, dict) or "error" in out:
            return self._failed(str(out.get("error") if isinstance(out, dict) else out))
        return clean_instruction(str(out.get("text", "")))

    def _failed(self, why: str) -> None:
        self.failures += 1
        log.warning("glider instruction writer failed; routing on the prompt",
                    extra={"expert": self.expert, "error": why[:300]})
        return None
