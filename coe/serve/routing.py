"""Builds the configured router (artifact + encoder) for the gateway and runs it on one prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coe.config import CoeConfig
from experts.embed.encoder import SentenceEncoder
from experts.paths import REPO_ROOT
from routers.base import RouteDecision, RouteInput


def artifact_path(path: Path) -> Path:
    """Relative artifact paths are relative to the checkout, so `coe serve` works from any cwd."""
    return path if path.is_absolute() else REPO_ROOT / path


def build_router(cfg: CoeConfig, encoder: SentenceEncoder | None = None) -> Any:
    """The router with its encoder; one intra-op thread, since one short prompt gains nothing from more
    and extra threads fight the expert replicas for the same cores (measured: p50 20 ms -> 90 ms at 2)."""
    import torch

    from routers.coe import CoERouter

    torch.set_num_threads(1)
    rc = cfg.router
    router = CoERouter.from_artifact(
        artifact_path(rc.artifact), encoder or SentenceEncoder(rc.encoder),
        general_expert=rc.general_expert,
        category_map_override=rc.category_map or None,
        tau_override=rc.entropy_threshold,
    )
    if rc.min_confidence is not None:
        router.min_confidence = rc.min_confidence
    return router


class RouterHolder:
    """The router of model='coe'; refuses to start when the artifact names experts the config lacks."""

    def __init__(self, cfg: CoeConfig, encoder: SentenceEncoder | None = None) -> None:
        self.cfg = cfg
        self.router = build_router(cfg, encoder)
        aliases = cfg.router.expert_aliases
        self.router.category_map = {c: aliases.get(e, e) for c, e in self.router.category_map.items()}
        unknown = sorted(set(self.router.category_map.values()) - set(cfg.expert_names))
        if unknown:
            raise ValueError(f"router artifact {cfg.router.artifact} maps categories to experts missing "
                             f"from the config: {unknown} (map them with router.expert_aliases or router.category_map)")

    def warm_up(self) -> None:
        self.route_one("warm up the encoder")

    def route_one(self, text: str) -> RouteDecision:
        return self.router.route([RouteInput(text=text)])[0]

    def describe(self) -> dict[str, Any]:
        return {"type": self.cfg.router.type, "artifact": str(self.cfg.router.artifact),
                "general_expert": self.cfg.router.general_expert}
