"""The gateway-overhead breakdown of `coe bench routing` from one response's Server-Timing header."""

import pytest

from eval.bench_routing import breakdown


def test_breakdown_adds_proxy_and_the_handle_calls_own_cost():
    parts = breakdown("parse;dur=2.00, route;dur=10.00, prepare;dur=0.10, expert;dur=30.00, build;dur=0.40, "
                      "app;dur=43.00", routed_s=0.050, direct_s=0.025)
    assert parts["route"] == pytest.approx(0.010)
    assert parts["proxy"] == pytest.approx(0.007)  # 50 ms round trip, 43 ms inside the gateway app
    assert parts["expert_minus_direct"] == pytest.approx(0.005)


def test_no_header_no_breakdown():
    assert breakdown("", 0.05, 0.02) == {}
