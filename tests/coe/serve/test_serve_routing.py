"""The gateway's router: the map resolved once from artifact, overrides and aliases, before the router is built;
the router used only through its protocol; a reload over the same encoder and pools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coe.config import load_config
from coe.serve.routing import RouterHolder, resolve_category_map
from routers.base import Router

ROOT = Path(__file__).resolve().parents[3]
ARTIFACT_MAP = json.loads((ROOT / "artifacts" / "coe-router" / "meta.json").read_text())["category_map"]


class Fixed:
    """Every prompt on the same axis: routing is deterministic and needs no model."""

    def encode(self, texts):
        v = np.zeros((len(texts), 384), dtype=np.float32)
        v[:, 0] = 1.0
        return v


def aliased_config():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    served = [e.name for e in cfg.experts]
    table = sorted(set(ARTIFACT_MAP.values()))
    # every trained expert gets another name (as router.expert_aliases does for outcome tables) ...
    cfg.router.expert_aliases = {name: served[0] for name in table}
    first = sorted(ARTIFACT_MAP)[0]
    pinned = next(n for n in served if n not in table)
    cfg.router.category_map = {first: pinned}  # ... and one category is pinned by the config
    return cfg, served, first, pinned


def test_the_map_is_artifact_then_overrides_then_aliases():
    cfg, served, first, pinned = aliased_config()
    resolved = resolve_category_map(cfg, ARTIFACT_MAP)
    assert set(resolved) == set(ARTIFACT_MAP)
    assert resolved[first] == pinned
    assert {c: e for c, e in resolved.items() if c != first} == {c: served[0] for c in ARTIFACT_MAP if c != first}


def test_a_map_naming_an_unserved_expert_is_refused_with_the_way_out():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    with pytest.raises(ValueError, match=r"experts missing from the config: \['gpt-9'\].*router.expert_aliases"):
        resolve_category_map(cfg, {"math": "gpt-9"})


def test_the_holder_serves_the_resolved_map_and_reloads_over_the_same_encoder_and_pools():
    cfg, served, _, _ = aliased_config()
    encoder, pools = Fixed(), {"p": object()}
    holder = RouterHolder(cfg, encoder=encoder, pools=pools)
    assert isinstance(holder.router, Router)
    assert holder.router.category_map == resolve_category_map(cfg, ARTIFACT_MAP)  # type: ignore[attr-defined]
    assert set(holder.router.experts) <= set(served)
    assert holder.router.stats() == {}
    assert holder.describe() == {"type": "coe", "artifact": str(cfg.router.artifact),
                                 "general_expert": cfg.router.general_expert}
    again = holder.reloaded()
    assert again is not holder and again.router is not holder.router
    assert again.encoder is encoder and again.pools is pools
    assert again.route_one("x") == holder.route_one("x")
