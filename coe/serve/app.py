"""The Ray Serve application builder: `coe.serve.app:build_app` works with `serve run/build/deploy`."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from coe.config import CoeConfig, ExpertConfig, load_config, parse_config
from coe.serve.expert_pool import ExpertPool
from coe.serve.gateway import Gateway
from coe.serve.reliability import checked_keys


def pool_deployment_options(pool: str, experts: list[ExpertConfig]) -> dict[str, Any]:
    """Placement and scaling of a pool come from its first expert's config (a pool shares one replica)."""
    lead = experts[0]
    actor: dict[str, Any] = {"num_cpus": lead.resources.num_cpus, "num_gpus": lead.resources.num_gpus}
    if lead.resources.memory_bytes:
        actor["memory"] = lead.resources.memory_bytes
    if lead.resources.custom:
        actor["resources"] = dict(lead.resources.custom)
    scaling = lead.autoscaling
    opts: dict[str, Any] = {
        "name": f"expert-{pool}",
        "ray_actor_options": actor,
        "max_ongoing_requests": lead.max_ongoing_requests,
        "max_queued_requests": lead.max_queued_requests,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 30,
    }
    if scaling.min_replicas == scaling.max_replicas:
        opts["num_replicas"] = scaling.max_replicas
    else:
        opts["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    return opts


def build_from_config(cfg: CoeConfig) -> Application:
    pools = {
        pool: serve.deployment(ExpertPool).options(**pool_deployment_options(pool, experts)).bind(
            pool, [e.model_dump(mode="json") for e in experts])
        for pool, experts in cfg.pools().items()
    }
    gateway = Gateway.options(num_replicas=cfg.server.gateway_replicas,
                              ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=256)
    keys = checked_keys(cfg)  # salted hashes only; refuses a non-loopback host without keys (coe/api/auth.py)
    return gateway.bind(cfg.model_dump(mode="json"), pools, keys.to_data())


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for Ray: args {"config": "configs/default.yaml"} or {"inline": {...coe config...}}."""
    if "inline" in args:
        return build_from_config(parse_config(args["inline"], "<serve args: inline>"))
    return build_from_config(load_config(args.get("config", "configs/default.yaml")))


__all__ = ["build_app", "build_from_config", "serve"]
