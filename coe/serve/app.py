"""The Ray Serve application builder: `coe.serve.app:build_app` works with `serve run/build/deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from coe.config import AutoscalingConfig, CoeConfig, ExpertConfig, ResourcesConfig, load_config, parse_config
from coe.serve.expert_pool import ExpertPool
from coe.serve.gateway import Gateway
from coe.serve.reliability import checked_keys
from coe.serve.retriever_pool import RetrieverPool
from experts.paths import repo_path


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


def pool_deployment_options(pool: str, experts: list[ExpertConfig]) -> dict[str, Any]:
    """Placement and scaling of a pool come from its first expert's config (a pool shares one replica)."""
    lead = experts[0]
    opts: dict[str, Any] = {
        "name": f"expert-{pool}",
        "ray_actor_options": actor_options(lead.resources),
        "max_ongoing_requests": lead.max_ongoing_requests,
        "max_queued_requests": lead.max_queued_requests,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 30,
    }
    return opts | scaling_options(lead.autoscaling)


def gateway_deployment_options(cfg: CoeConfig) -> dict[str, Any]:
    """The gateway scales on its own: a fixed count (server.gateway_replicas) or server.gateway_autoscaling."""
    server = cfg.server
    scaling = server.gateway_autoscaling or AutoscalingConfig(
        min_replicas=server.gateway_replicas, max_replicas=server.gateway_replicas)
    opts: dict[str, Any] = {"ray_actor_options": actor_options(server.gateway_resources),
                            "max_ongoing_requests": 256, "graceful_shutdown_timeout_s": 30}  # drain on stop
    return opts | scaling_options(scaling)


def build_from_config(cfg: CoeConfig) -> Application:
    pools = {
        pool: serve.deployment(ExpertPool).options(**pool_deployment_options(pool, experts)).bind(
            pool, [e.model_dump(mode="json") for e in experts], cfg.memory.model_dump(mode="json"),
            experts[0].max_queued_requests)
        for pool, experts in cfg.pools().items()
    }
    retriever = None
    if cfg.retrieval is not None:
        retriever = serve.deployment(RetrieverPool).options(
            name="retriever", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64,
        ).bind(cfg.retrieval.model_dump(mode="json"))
    gateway = Gateway.options(**gateway_deployment_options(cfg))
    keys = checked_keys(cfg)  # salted hashes only; refuses a non-loopback host without keys (coe/api/auth.py)
    return gateway.bind(cfg.model_dump(mode="json"), pools, retriever, keys.to_data())


def config_path(path: str | Path) -> Path:
    """Relative paths that do not exist in the cwd resolve against the checkout: on a cluster the build task
    runs in a Ray worker whose cwd is the session folder, not the repo."""
    return repo_path(path, cwd_first=True)


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for Ray: args {"config": "configs/default.yaml"} or {"inline": {...coe config...}}."""
    if "inline" in args:
        return build_from_config(parse_config(args["inline"], "<serve args: inline>"))
    return build_from_config(load_config(config_path(args.get("config", "configs/default.yaml"))))


__all__ = ["build_app", "build_from_config", "serve"]
