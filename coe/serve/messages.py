"""What travels between the gateway and its deployments (expert pools, the retriever), as typed objects.

Requests to an expert pool are `experts.llm.base.GenerationRequest`, its answers `Chunk`s (a whole completion is
one Chunk carrying all the text). A deployment that refuses a request (queue full, no device room, a bad
retrieval request) returns a `Refusal` holding an error of the one hierarchy (coe/api/errors.py) instead of
raising: an exception raised in a replica reaches the gateway wrapped by Ray, with a traceback in its text, while
a returned value arrives as it was sent. All of these are plain dataclasses, pickled by Ray as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coe.api.errors import CoeError, ExpertUnavailable, Overloaded
from experts.memory.errors import MemoryBusyError, QueueFullError


@dataclass(frozen=True)
class Refusal:
    """A request a deployment did not serve, and why; the gateway raises `error` (or, for an expert pool, counts
    it as overload and may try the fallback expert): a refusal is never the expert's fault."""

    error: CoeError


def memory_refusal(err: QueueFullError | MemoryBusyError) -> Refusal:
    """An expert pool's queue is full (429) or no device room came in time (503)."""
    if isinstance(err, QueueFullError):
        return Refusal(Overloaded(str(err), "model"))
    return Refusal(ExpertUnavailable(str(err), "model"))


@dataclass(frozen=True)
class RetrieveAnswer:
    """The retriever's answer to /v1/retrieve: the chosen expert per query (for the metrics) and the `data` array
    already serialised to JSON, so ten documents with their text travel as one bytes object and leave the gateway
    without a re-encode."""

    experts: list[str]
    json: bytes


@dataclass(frozen=True)
class EmbedAnswer:
    """The retriever's answer to /v1/embeddings: one vector per input and the routing decision of each."""

    embeddings: list[list[float]]
    decisions: list[dict[str, Any]]
