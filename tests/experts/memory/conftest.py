"""Sized fake experts for the memory tests: every move takes nbytes / bandwidth seconds of virtual time."""

from __future__ import annotations

import pytest

from experts.memory.simulate import Ledger, SimulatedExpert

# One byte per second for every move: a 3-byte expert takes exactly 3 s to move anywhere.
UNIT_BW = {k: 1.0 for k in ("disk->host", "disk->device", "host->device", "device->host", "device->disk",
                            "host->disk")}


@pytest.fixture
def make_experts():
    """make_experts({"a": 3, "b": 2}, ledger) -> {name: SimulatedExpert}, all on disk."""

    def make(sizes: dict[str, int], ledger: Ledger | None = None, start: str = "disk"):
        return {n: SimulatedExpert(n, s, start_tier=start, bandwidth=UNIT_BW, ledger=ledger)  # type: ignore[arg-type]
                for n, s in sizes.items()}

    return make
