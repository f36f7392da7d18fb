"""Builds the configured router (artifact + encoder) for the gateway and runs it on one prompt.

Everything the config says about the map (the artifact's category→expert map, `router.category_map` overrides,
`router.expert_aliases`) is resolved here once, before the router is built, and checked against the served
experts; the router is then only used through its protocol (`routers.base.Router`: route, experts, stats).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coe.config import CascadeConfig, CoeConfig
from experts.embed.encoders import PromptEncoder, make_encoder
from experts.paths import repo_path
from routers.base import RouteDecision, RouteInput, Router

log = logging.getLogger(__name__)


def artifact_path(path: Path) -> Path:
    """Relative artifact paths are relative to the checkout, so `coe serve` works from any cwd."""
    return repo_path(path)


def router_encoder(cfg: CoeConfig) -> PromptEncoder:
    """The prompt encoder of `router.encoder` (experts/embed/encoders.py) on one intra-op thread (torch and ONNX
    Runtime): one short prompt gains nothing from more, and extra threads fight the expert replicas for the same
    cores (measured: p50 20 ms -> 90 ms at 2)."""
    return make_encoder(cfg.router.encoder, threads=1)


def resolve_category_map(cfg: CoeConfig, artifact_map: Mapping[str, str]) -> dict[str, str]:
    """The map the router serves: the artifact's, updated by `router.category_map`, with `router.expert_aliases`
    applied; refuses experts the config does not serve."""
    rc = cfg.router
    merged = {**artifact_map, **rc.category_map}
    resolved = {c: rc.expert_aliases.get(e, e) for c, e in merged.items()}
    unknown = sorted(set(resolved.values()) - set(cfg.expert_names))
    if unknown:
        raise ValueError(f"router artifact {rc.artifact} maps categories to experts missing "
                         f"from the config: {unknown} (map them with router.expert_aliases or router.category_map)")
    return resolved


def build_router(cfg: CoeConfig, encoder: PromptEncoder | None = None,
                 pools: Mapping[str, Any] | None = None) -> Router:
    """The configured router over `encoder` (default: `router_encoder(cfg)`); `pools`: the expert pools' handles,
    needed by GLIDER's llm instruction mode only."""
    import torch

    from routers.artifacts import load_artifact
    from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION, CoERouter

    torch.set_num_threads(1)  # see router_encoder
    rc = cfg.router
    encoder = encoder or router_encoder(cfg)
    if rc.type == "per_prompt":
        return build_per_prompt(cfg, encoder)
    art = load_artifact(artifact_path(rc.artifact), ARTIFACT_KIND, ARTIFACT_VERSION)
    router = CoERouter.from_loaded(
        art, encoder,
        general_expert=rc.general_expert,
        category_map_override=resolve_category_map(cfg, art.meta.get("category_map", {})),
        tau_override=rc.entropy_threshold,
        min_confidence_override=rc.min_confidence,
    )
    if rc.type == "glider":
        return build_glider(cfg, router, encoder, pools)
    if rc.cascade is not None:
        return build_cascade(rc.cascade, router)
    return router


def build_cascade(cc: CascadeConfig, full: Router) -> Router:
    """The static first stage in front of `full` (its map, τ and general expert decide for both stages)."""
    from routers.cascade import CascadeRouter
    from routers.coe import CoERouter

    fast = CoERouter.from_artifact(artifact_path(cc.artifact), make_encoder(cc.encoder, threads=1))
    return CascadeRouter(fast, full, cc.min_confidence)


def build_per_prompt(cfg: CoeConfig, encoder: PromptEncoder) -> Router:
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


def build_glider(cfg: CoeConfig, local: Any, encoder: PromptEncoder,
                 pools: Mapping[str, Any] | None = None) -> Router:
    """GLIDER over the CoE classifier; llm mode has the writer expert write instructions through its pool."""
    from routers.glider import GliderRouter, load_global_scorer

    gc = cfg.router.glider
    writer = None
    if gc.instruction_mode == "llm":
        writer = pool_writer(cfg, pools)
    scorer = load_global_scorer(artifact_path(gc.artifact), encoder, gc.instruction_mode, writer,
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
    """The router of model='coe' with the encoder and pools it was built over, so a reload (admin) builds the
    next one over the same encoder and pools; refuses to start when the router names experts the config lacks."""

    def __init__(self, cfg: CoeConfig, encoder: PromptEncoder | None = None,
                 pools: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.encoder = encoder or router_encoder(cfg)
        self.pools = pools
        self.router = build_router(cfg, self.encoder, pools)

    def reloaded(self) -> RouterHolder:
        """A new holder over the artifact as it is on disk now (checksums verified), same encoder and pools."""
        return RouterHolder(self.cfg, self.encoder, self.pools)

    def warm_up(self) -> None:
        if self.cfg.router.type == "glider" and self.cfg.router.glider.instruction_mode == "llm":
            self.encoder.encode(["warm up the encoder"])  # the writer's pool may not be up yet: no call
            return
        self.route_one("warm up the encoder")

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        return self.router.route(inputs)

    def route_one(self, text: str) -> RouteDecision:
        return self.router.route([RouteInput(text=text)])[0]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.cfg.router.type, "artifact": str(self.cfg.router.artifact),
                               "general_expert": self.cfg.router.general_expert}
        if self.cfg.router.type == "glider":
            out["glider"] = self.cfg.router.glider.model_dump(mode="json") | self.router.stats()
        return out
