"""Builds the configured router (artifact + encoder) for the gateway and runs it on one prompt."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coe.config import CascadeConfig, CoeConfig
from experts.embed.encoders import PromptEncoder, make_encoder
from experts.paths import repo_path
from routers.base import RouteDecision, RouteInput

log = logging.getLogger(__name__)


def artifact_path(path: Path) -> Path:
    """Relative artifact paths are relative to the checkout, so `coe serve` works from any cwd."""
    return repo_path(path)


def build_router(cfg: CoeConfig, encoder: PromptEncoder | None = None,
                 pools: Mapping[str, Any] | None = None) -> Any:
    """The router with its encoder (`router.encoder`, experts/embed/encoders.py); one intra-op thread (torch and
    ONNX Runtime), since one short prompt gains nothing from more and extra threads fight the expert replicas for
    the same cores (measured: p50 20 ms -> 90 ms at 2)."""
    import torch

    from routers.coe import CoERouter

    torch.set_num_threads(1)
    rc = cfg.router
    encoder = encoder or make_encoder(rc.encoder, threads=1)
    if rc.type == "per_prompt":
        return build_per_prompt(cfg, encoder)
    router = CoERouter.from_artifact(
        artifact_path(rc.artifact), encoder,
        general_expert=rc.general_expert,
        category_map_override=rc.category_map or None,
        tau_override=rc.entropy_threshold,
    )
    if rc.min_confidence is not None:
        router.min_confidence = rc.min_confidence
    if rc.type == "glider":
        return build_glider(cfg, router, pools)
    if rc.cascade is not None:
        return build_cascade(rc.cascade, router)
    return router


def build_cascade(cc: CascadeConfig, full: Any) -> Any:
    """The static first stage in front of `full` (its map, τ and general expert decide for both stages)."""
    from routers.cascade import CascadeRouter
    from routers.coe import CoERouter

    fast = CoERouter.from_artifact(artifact_path(cc.artifact), make_encoder(cc.encoder, threads=1))
    return CascadeRouter(fast, full, cc.min_confidence)


def build_per_prompt(cfg: CoeConfig, encoder: PromptEncoder) -> Any:
    """The per-prompt outcome router, restricted to the table's models that the config serves (after aliases)."""
    from routers.per_prompt import PerPromptRouter

    rc = cfg.router
    router = PerPromptRouter.from_artifact(artifact_path(rc.artifact), encoder)
    if rc.cost_penalty is not None:
        router.cost_penalty = rc.cost_penalty
    left_out = router.restrict(rc.expert_aliases, set(cfg.expert_names))
    if left_out:
        log.info("per-prompt router: models without a served expert are never chosen", extra={"models": left_out})
    return router


def build_glider(cfg: CoeConfig, local: Any, pools: Mapping[str, Any] | None = None) -> Any:
    """GLIDER over the CoE classifier; llm mode has the writer expert write instructions through its pool."""
    from routers.glider import GliderRouter, load_global_scorer

    gc = cfg.router.glider
    writer = None
    if gc.instruction_mode == "llm":
        writer = pool_writer(cfg, pools)
    scorer = load_global_scorer(artifact_path(gc.artifact), local.encoder, gc.instruction_mode, writer,
                                aliases=cfg.router.expert_aliases, cache_size=gc.cache_size)
    unknown = sorted(set(scorer.experts) - set(cfg.expert_names))
    if unknown:
        raise ValueError(f"glider artifact {gc.artifact} has instructions for experts missing from the config: "
                         f"{unknown} (map them with router.expert_aliases)")
    return GliderRouter(local, scorer, alpha=gc.alpha, top_k=gc.top_k)


def pool_writer(cfg: CoeConfig, pools: Mapping[str, Any] | None) -> Any:
    """The instruction writer of llm mode: the configured expert, called through its pool's handle."""
    from coe.serve.instruction_writer import PoolWriter

    expert = cfg.expert(cfg.router.glider.instruction_expert or cfg.router.general_expert)
    if pools is None or expert.pool_name not in pools:
        raise ValueError(f"router.glider.instruction_mode 'llm' writes instructions with expert {expert.name!r} "
                         f"through its pool {expert.pool_name!r}: build this router in the gateway, which has it")
    return PoolWriter(pools[expert.pool_name], expert.name, expert.timeout_s or cfg.reliability.expert_timeout_s)


class RouterHolder:
    """The router of model='coe'; refuses to start when the artifact names experts the config lacks."""

    def __init__(self, cfg: CoeConfig, encoder: PromptEncoder | None = None,
                 pools: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.router = build_router(cfg, encoder, pools)
        if cfg.router.type == "per_prompt":  # already restricted to the served experts
            return
        aliases = cfg.router.expert_aliases
        self.router.category_map = {c: aliases.get(e, e) for c, e in self.router.category_map.items()}
        unknown = sorted(set(self.router.category_map.values()) - set(cfg.expert_names))
        if unknown:
            raise ValueError(f"router artifact {cfg.router.artifact} maps categories to experts missing "
                             f"from the config: {unknown} (map them with router.expert_aliases or router.category_map)")

    def warm_up(self) -> None:
        if self.cfg.router.type == "glider" and self.cfg.router.glider.instruction_mode == "llm":
            self.router.encoder.encode(["warm up the encoder"])  # the writer's pool may not be up yet: no call
            return
        self.route_one("warm up the encoder")

    def route_one(self, text: str) -> RouteDecision:
        return self.router.route([RouteInput(text=text)])[0]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.cfg.router.type, "artifact": str(self.cfg.router.artifact),
                               "general_expert": self.cfg.router.general_expert}
        if self.cfg.router.type == "glider":
            cache = self.router.global_scorer.cache
            out["glider"] = self.cfg.router.glider.model_dump(mode="json") | {
                "instruction_cache": {"hits": cache.hits, "misses": cache.misses, "size": len(cache)}}
        return out
