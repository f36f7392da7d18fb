"""Failures of the memory layer; the API maps MemoryBusyError to 503 and QueueFullError to 429."""

from __future__ import annotations


class MemoryBusyError(RuntimeError):
    """No device room could be made within the wait bound (everything resident is pinned or loading)."""


class QueueFullError(RuntimeError):
    """An expert's request queue is at its bound; the caller should retry later."""
