"""The Ray Serve application builder: `coe.serve.app:build_app` works with `serve run/build/deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from coe.config import CoeConfig, load_config, parse_config
from coe.serve.deployment_options import GATEWAY, RETRIEVER, get_deployment_options, pool_deployment_name
from coe.serve.expert_pool import ExpertPool
from coe.serve.gateway import Gateway
from coe.serve.reliability import checked_keys
from coe.serve.retriever_pool import RetrieverPool
from experts.paths import repo_path


def build_from_config(cfg: CoeConfig) -> Application:
    options = get_deployment_options(cfg)
    pools = {
        pool: serve.deployment(ExpertPool).options(**options[pool_deployment_name(pool)]).bind(
            pool, [e.model_dump(mode="json") for e in experts], cfg.memory.model_dump(mode="json"),
            experts[0].max_queued_requests)
        for pool, experts in cfg.pools().items()
    }
    retriever = None
    if cfg.retrieval is not None:
        retriever = serve.deployment(RetrieverPool).options(**options[RETRIEVER]).bind(
            cfg.retrieval.model_dump(mode="json"))
    gateway = Gateway.options(**options[GATEWAY])
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
