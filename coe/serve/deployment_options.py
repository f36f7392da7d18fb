"""Serve options of every deployment, derived from the config in one place (Ray Serve LLM's
`get_deployment_options(llm_config)`): coe's own defaults below, merged with what the config says.

Pure (no Ray): coe/serve/app.py applies the result; tests read it without starting anything.
"""

from __future__ import annotations

from typing import Any

from coe.config import AutoscalingConfig, CoeConfig, ExpertConfig, ResourcesConfig

GATEWAY, RETRIEVER = "gateway", "retriever"

# What coe sets itself, per kind of deployment; everything else comes from the config. 30 s of graceful shutdown
# lets a replica finish the requests it holds when the app is deleted or scaled down (the drain on SIGTERM).
DEFAULT_DEPLOYMENT_OPTIONS: dict[str, dict[str, Any]] = {
    "pool": {"health_check_period_s": 10, "graceful_shutdown_timeout_s": 30},
    GATEWAY: {"max_ongoing_requests": 256, "graceful_shutdown_timeout_s": 30},
    RETRIEVER: {"ray_actor_options": {"num_cpus": 0.5}, "max_ongoing_requests": 64},
}


def pool_deployment_name(pool: str) -> str:
    return f"expert-{pool}"


def actor_options(res: ResourcesConfig) -> dict[str, Any]:
    """Ray actor options of one replica: CPUs, GPUs, memory and custom resources (node placement)."""
    actor: dict[str, Any] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
    if res.memory_bytes:
        actor["memory"] = res.memory_bytes
    if res.custom:
        actor["resources"] = dict(res.custom)
    return actor


def scaling_options(scaling: AutoscalingConfig) -> dict[str, Any]:
    """A fixed replica count when min == max, Serve autoscaling otherwise."""
    if scaling.min_replicas == scaling.max_replicas:
        return {"num_replicas": scaling.max_replicas}
    return {"autoscaling_config": {
        "min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas,
        "target_ongoing_requests": scaling.target_ongoing_requests,
    }}


def pool_options(pool: str, experts: list[ExpertConfig]) -> dict[str, Any]:
    """A pool is one deployment; its experts agree on placement (checked at config load, coe/pool_config.py)."""
    lead = experts[0]
    return DEFAULT_DEPLOYMENT_OPTIONS["pool"] | {
        "name": pool_deployment_name(pool),
        "ray_actor_options": actor_options(lead.resources),
        "max_ongoing_requests": lead.max_ongoing_requests,
        "max_queued_requests": lead.max_queued_requests,
    } | scaling_options(lead.autoscaling)


def gateway_options(cfg: CoeConfig) -> dict[str, Any]:
    """The gateway scales on its own: a fixed count (server.gateway_replicas) or server.gateway_autoscaling."""
    server = cfg.server
    scaling = server.gateway_autoscaling or AutoscalingConfig(
        min_replicas=server.gateway_replicas, max_replicas=server.gateway_replicas)
    return DEFAULT_DEPLOYMENT_OPTIONS[GATEWAY] | {"name": GATEWAY,
                                                  "ray_actor_options": actor_options(server.gateway_resources)
                                                  } | scaling_options(scaling)


def get_deployment_options(cfg: CoeConfig) -> dict[str, dict[str, Any]]:
    """Serve options of each deployment of the app, keyed by deployment name: every pool, the retriever (when
    retrieval is configured) and the gateway."""
    out = {pool_deployment_name(pool): pool_options(pool, experts) for pool, experts in cfg.pools().items()}
    if cfg.retrieval is not None:
        out[RETRIEVER] = DEFAULT_DEPLOYMENT_OPTIONS[RETRIEVER] | {"name": RETRIEVER}
    out[GATEWAY] = gateway_options(cfg)
    return out
