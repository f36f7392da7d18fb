"""Test-only backends: real experts made to misbehave, for the breaker, fallback, retry and health tests.

A test config selects one as an expert's backend, `tests.coe.serve.failing_backend:broken` (every generation
raises) or `...:flaky` (generations raise while the file `backend_options.switch_file` exists). The pool's replica
imports this module: Ray puts the driver's working directory (the repo root, where pytest runs) on its workers'
path. The wrapped backend is the real transformers one, so loading, tiers and streaming stay real.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from coe.config import ExpertConfig
from coe.serve.backends import build_backend
from experts.llm.base import BackendError, Chunk, GenerationRequest, LLMBackend


class FailingBackend:
    """Delegates to a real backend, except that generate raises BackendError while `why()` returns a reason."""

    def __init__(self, inner: LLMBackend, why: Callable[[], str | None]) -> None:
        self.inner = inner
        self.why = why

    def __getattr__(self, name: str) -> Any:  # info, tier, start, to, loglikelihoods: the real backend's
        return getattr(self.inner, name)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        reason = self.why()
        if reason is not None:
            raise BackendError(f"expert {self.inner.info.name!r} {reason}")
        async for chunk in self.inner.generate(request):
            yield chunk


def real_backend(cfg: ExpertConfig) -> LLMBackend:
    return build_backend(cfg.model_copy(update={"backend": "transformers", "backend_options": {}}))


def broken(cfg: ExpertConfig) -> FailingBackend:
    """Every generation fails."""
    return FailingBackend(real_backend(cfg), lambda: "is configured to fail")


def flaky(cfg: ExpertConfig) -> FailingBackend:
    """Generations fail while backend_options.switch_file exists, and succeed again once it is gone."""
    switch = str(cfg.backend_options["switch_file"])
    return FailingBackend(real_backend(cfg),
                          lambda: f"is configured to fail while {switch} exists" if os.path.exists(switch) else None)
