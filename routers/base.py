"""What every router takes and returns; routers are pure Python and know nothing of Ray or HTTP."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

# routed: the router chose the expert; fallback: it sent the request to the general / fallback expert (unsure, or
# the routed expert could not answer); direct: the client named the expert. The metrics label is this kind.
DecisionKind = Literal["routed", "fallback", "direct"]


@dataclass(frozen=True)
class RouteInput:
    """The text a router looks at (the last user turn for chat, the query for retrieval)."""

    text: str
    task_hint: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteDecision:
    """Where a request goes and why; returned to the client as the `coe` object and x-coe-* headers."""

    expert: str
    category: str | None
    confidence: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    kind: DecisionKind = "routed"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "expert": self.expert,
            "category": self.category,
            "confidence": round(float(self.confidence), 4),
            "reason": self.reason,
        }
        if len(self.weights) > 1:  # a mixing router (GLIDER top-k) shows its mixture; single choices stay as before
            out["weights"] = {name: round(float(w), 4) for name, w in self.weights.items()}
        return out


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 embeddings (shape [n, d])."""

    def encode(self, texts: list[str]):  # -> np.ndarray
        ...


@runtime_checkable
class Router(Protocol):
    """Batched routing: one decision per input. What the serving side needs of any router, so it never reaches
    into one: the experts it can choose (checked against the config at start-up) and its live statistics."""

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]: ...

    @property
    def experts(self) -> Collection[str]:
        """Every expert a decision can name."""
        ...

    def stats(self) -> dict[str, Any]:
        """Live counters for /health (e.g. GLIDER's instruction cache); {} for a stateless router."""
        ...
