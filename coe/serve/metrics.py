"""Prometheus metrics of the gateway: requests, routing decisions, latency, tokens."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """One registry per gateway replica, so tests and multiple apps never share global state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("coe_requests_total", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.routes = Counter("coe_routing_decisions_total", "Routing decisions by expert and category",
                              ["expert", "category", "kind"], registry=self.registry)
        self.latency = Histogram("coe_request_latency_seconds", "End-to-end latency by endpoint and expert",
                                 ["endpoint", "expert"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.route_latency = Histogram("coe_route_latency_seconds", "Time spent in the router",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("coe_tokens_total", "Tokens by expert and kind (prompt, completion)",
                              ["expert", "kind"], registry=self.registry)

    def render(self, memory: dict[str, dict] | None = None) -> bytes:
        """The gateway's own metrics, plus the memory tiers of every pool (snapshots fetched at scrape)."""
        out = generate_latest(self.registry)
        if memory:
            from experts.memory.metrics import StaticSnapshot, prometheus_collector

            reg = CollectorRegistry()
            reg.register(prometheus_collector({p: StaticSnapshot(s) for p, s in memory.items()}))
            out += generate_latest(reg)
        return out
