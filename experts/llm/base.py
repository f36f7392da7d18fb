"""The one protocol every LLM backend implements, and the request/chunk types it speaks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from experts.memory.movable import Tier as Tier  # defined once, where memory tiers live; re-exported


@dataclass(frozen=True)
class Message:
    role: str
    content: str


# Temperatures below this decode greedily, as vLLM does: dividing logits by a near-zero temperature overflows.
SAMPLING_EPS = 1e-5


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend needs to generate; validated by the API layer before it gets here."""

    messages: tuple[Message, ...]
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    routing_trace: bool = False  # MoErging experts: return the per-module routing weights on the last chunk

    @property
    def samples(self) -> bool:
        """False: greedy decoding (temperature 0 or too small to divide by)."""
        return self.temperature >= SAMPLING_EPS


@dataclass
class Chunk:
    """A piece of streamed output; the last chunk carries finish_reason and the usage counts."""

    text: str
    finish_reason: Literal["stop", "length"] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    routing_trace: dict[str, Any] | None = None


@dataclass(frozen=True)
class BackendOptions:
    """How a local backend runs its model. coe builds it once from the expert's config (coe/serve/backends.py);
    the config's defaults are these, so the two cannot disagree."""

    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    chat_template: bool = True  # False for base models: messages become a completion prompt
    context_length: int = 2048
    device: str = "cpu"


@dataclass
class BackendInfo:
    name: str
    backend: str
    model: str
    params: int = 0
    nbytes: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class BackendError(RuntimeError):
    """A backend failed to generate (the gateway may fall back to another expert)."""


@runtime_checkable
class LLMBackend(Protocol):
    """Generates text for one expert; may move its weights between memory tiers."""

    info: BackendInfo

    async def start(self) -> None:
        """Load weights and make the backend ready (called once, off the request path)."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the completion of a chat request."""

    async def loglikelihoods(self, prompt: str, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation after a raw prompt (used to score experts offline)."""

    async def to(self, tier: Tier) -> None:
        """Move the weights to a memory tier."""

    @property
    def tier(self) -> Tier:
        """Where the weights are now."""


def apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Cut text at the first stop string; True when one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True


def completion_prompt(messages: tuple[Message, ...]) -> str:
    """A plain-text prompt for base models that have no chat template."""
    lines = []
    for m in messages:
        if m.role == "system":
            lines.append(m.content.strip())
        else:
            speaker = "User" if m.role == "user" else "Assistant"
            lines.append(f"{speaker}: {m.content.strip()}")
    lines.append("Assistant:")
    return "\n\n".join(lines)
