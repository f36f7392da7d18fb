"""Ray Serve deployment hosting a pool of expert LLMs (one or more) behind DeploymentHandle calls."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from coe.config import ExpertConfig
from coe.serve.backends import build_backend
from coe.serve.pool_stats import GenerationStats
from experts.llm.base import BackendError, Chunk, GenerationRequest, LLMBackend, Message, Tier

log = logging.getLogger(__name__)


def to_generation_request(payload: dict[str, Any]) -> GenerationRequest:
    """The plain dict that travels through Ray → the backend's request type."""
    return GenerationRequest(
        messages=tuple(Message(m["role"], m["content"]) for m in payload["messages"]),
        max_tokens=int(payload["max_tokens"]),
        temperature=float(payload.get("temperature", 0.0)),
        top_p=float(payload.get("top_p", 1.0)),
        stop=tuple(payload.get("stop") or ()),
        seed=payload.get("seed"),
    )


def chunk_dict(chunk: Chunk) -> dict[str, Any]:
    return {"text": chunk.text, "finish_reason": chunk.finish_reason,
            "prompt_tokens": chunk.prompt_tokens, "completion_tokens": chunk.completion_tokens}


class ExpertPool:
    """Owns the backends of its experts; every expert is loaded before the replica reports healthy."""

    async def __init__(self, pool: str, experts: list[dict[str, Any]]) -> None:
        self.pool = pool
        self.configs = {e["name"]: ExpertConfig.model_validate(e) for e in experts}
        self.backends: dict[str, LLMBackend] = {}
        self.stats = GenerationStats()
        for name, cfg in self.configs.items():
            backend = build_backend(cfg)
            await backend.start()
            self.backends[name] = backend
            log.info("expert ready", extra={"expert": name, "pool": self.pool})

    def _backend(self, expert: str) -> LLMBackend:
        if expert not in self.backends:
            raise BackendError(f"expert {expert!r} is not hosted by pool {self.pool!r}")
        return self.backends[expert]

    async def generate(self, expert: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Whole completion at once."""
        backend = self._backend(expert)
        parts: list[str] = []
        last = Chunk(text="")
        with self.stats.track(expert):
            async for chunk in backend.generate(to_generation_request(payload)):
                parts.append(chunk.text)
                last = chunk
        out = chunk_dict(last)
        out["text"] = "".join(parts)
        return out

    async def stream(self, expert: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Token deltas as they come; the last item carries finish_reason and usage."""
        backend = self._backend(expert)
        with self.stats.track(expert):
            async for chunk in backend.generate(to_generation_request(payload)):
                yield chunk_dict(chunk)

    async def set_tier(self, expert: str, tier: Tier) -> list[dict[str, Any]]:
        """Admin load/offload; moves the backend directly until the memory TierManager owns tier moves."""
        await self._backend(expert).to(tier)
        log.info("expert moved", extra={"expert": expert, "tier": tier})
        return await self.describe()

    async def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "pool": self.pool, "backend": b.info.backend, "tier": b.tier,
             "params": b.info.params, "bytes": b.info.nbytes, "generations": self.stats.of(n)}
            for n, b in self.backends.items()
        ]
