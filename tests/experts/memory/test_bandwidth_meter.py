"""Bandwidth estimates that price reloads: defaults, first measurement, then a moving average."""

from __future__ import annotations

import pytest

from experts.memory import BandwidthMeter


def test_first_measurement_replaces_the_default_then_averages():
    b = BandwidthMeter({"host->device": 100.0}, alpha=0.5)
    assert b.seconds("host", "device", 200) == 2.0
    b.observe("host", "device", 100, 0.5)  # 200 B/s
    assert b.bandwidth("host", "device") == 200.0
    b.observe("host", "device", 100, 0.25)  # 400 B/s
    assert b.bandwidth("host", "device") == 300.0
    b.observe("host", "device", 0, 1.0)  # ignored
    assert b.bandwidth("host", "device") == 300.0


def test_reload_cost_is_the_way_back_to_the_device():
    b = BandwidthMeter({"host->device": 10.0, "disk->device": 2.0})
    assert b.reload_s("host", 20) == 2.0
    assert b.reload_s("disk", 20) == 10.0
    assert b.reload_s("device", 20) == 0.0
    with pytest.raises(KeyError):
        b.bandwidth("host", "host")
