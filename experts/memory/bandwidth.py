"""Measured bandwidth of each kind of tier move, used to price reloads (defaults until a move is seen)."""

from __future__ import annotations

from collections.abc import Mapping

from experts.memory.movable import Tier, move_kind

# Bytes per second before anything is measured: PCIe-class host<->device, NVMe-class disk reads; dropping
# host tensors to disk is nearly free because the safetensors file is already there.
DEFAULT_BANDWIDTH: dict[str, float] = {
    "disk->host": 2.0e9,
    "disk->device": 2.0e9,
    "host->device": 12.0e9,
    "device->host": 12.0e9,
    "device->disk": 50.0e9,
    "host->disk": 50.0e9,
}


class BandwidthMeter:
    """Exponentially weighted average of observed bytes/second per move kind."""

    def __init__(self, defaults: Mapping[str, float] | None = None, alpha: float = 0.3) -> None:
        self._bw: dict[str, float] = dict(DEFAULT_BANDWIDTH)
        self._bw.update(defaults or {})
        self._measured: set[str] = set()
        self.alpha = alpha

    def observe(self, src: Tier, dst: Tier, nbytes: int, seconds: float) -> None:
        if nbytes <= 0 or seconds <= 0:
            return
        kind = move_kind(src, dst)
        seen = nbytes / seconds
        if kind in self._measured:
            self._bw[kind] = (1 - self.alpha) * self._bw[kind] + self.alpha * seen
        else:  # the first measurement replaces the guess outright
            self._bw[kind] = seen
            self._measured.add(kind)

    def bandwidth(self, src: Tier, dst: Tier) -> float:
        return self._bw[move_kind(src, dst)]

    def seconds(self, src: Tier, dst: Tier, nbytes: int) -> float:
        """Expected duration of moving nbytes from src to dst."""
        return nbytes / self.bandwidth(src, dst)

    def reload_s(self, landing: Tier, nbytes: int) -> float:
        """What evicting to `landing` costs later: the time to bring the expert back to the device."""
        return 0.0 if landing == "device" else self.seconds(landing, "device", nbytes)

    def table(self) -> dict[str, float]:
        return dict(self._bw)
