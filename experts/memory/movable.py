"""What the memory manager can move: anything with a tier, a measured size and an async `to(tier)`."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

Tier = Literal["device", "host", "disk"]
TIERS: tuple[Tier, ...] = ("device", "host", "disk")


class SizedInfo(Protocol):
    """The part of `BackendInfo` the manager reads: the measured size of the weights."""

    nbytes: int


@runtime_checkable
class Movable(Protocol):
    """An expert whose weights can live in one of three tiers (the tier-moving part of `LLMBackend`)."""

    @property
    def info(self) -> SizedInfo: ...

    @property
    def tier(self) -> Tier: ...

    async def to(self, tier: Tier) -> None: ...


def move_kind(src: Tier, dst: Tier) -> str:
    """The label of a move in metrics and bandwidth tables, e.g. 'disk->device'."""
    return f"{src}->{dst}"


def tier_below(tier: Tier) -> Tier:
    """Where an evicted expert goes: one tier down (disk is the floor: the safetensors files stay)."""
    return "host" if tier == "device" else "disk"


def tier_above(tier: Tier) -> Tier:
    """Where a prefetch moves an expert: one tier up."""
    return "device" if tier == "host" else "host"


def is_up(src: Tier, dst: Tier) -> bool:
    """True for a move towards the device (a load or prefetch), False for an eviction."""
    return TIERS.index(dst) < TIERS.index(src)
