"""Admin endpoints (scope `admin`, enforced by coe.api.guard): expert tiers and router reload.

Load/offload move an expert between memory tiers through its pool's TierManager (refused while it is
pinned by requests). Names come from the URL and are only ever looked up in
the config, never turned into paths.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request

from coe.api.errors import Conflict, NotFound
from coe.config import ExpertConfig
from coe.serve.routing import RouterHolder
from routers.artifacts import ArtifactError

log = logging.getLogger(__name__)
admin = APIRouter(tags=["admin"])


def _gateway(request: Request) -> Any:
    return request.app.state.gateway


def _expert(gateway: Any, name: str) -> ExpertConfig:
    if name not in gateway.cfg.expert_names:
        raise NotFound(f"expert {name!r} does not exist; available: {gateway.cfg.expert_names}", "name",
                       "expert_not_found")
    return gateway.cfg.expert(name)


async def _describe(gateway: Any) -> list[dict[str, Any]]:
    pools = await asyncio.gather(*(h.describe.remote() for h in gateway.pools.values()))
    breakers = gateway.caller.breakers.snapshot()
    return [e | {"breaker": breakers.get(e["name"], "closed")} for pool in pools for e in pool]


@admin.get("/v1/experts")
async def list_experts(request: Request) -> dict[str, Any]:
    """Every expert with its tier, generation counts and circuit breaker state."""
    return {"object": "list", "data": await _describe(_gateway(request))}


@admin.post("/v1/experts/{name}/load")
async def load_expert(request: Request, name: str) -> dict[str, Any]:
    """Make an expert device-resident."""
    return await _move(_gateway(request), name, "device")


@admin.post("/v1/experts/{name}/offload")
async def offload_expert(request: Request, name: str, tier: Literal["host", "disk"] = "host") -> dict[str, Any]:
    """Release an expert's device copy (host: keep weights in RAM; disk: drop them)."""
    return await _move(_gateway(request), name, tier)


async def _move(gateway: Any, name: str, tier: str) -> dict[str, Any]:
    expert = _expert(gateway, name)
    described = await gateway.pools[expert.pool_name].set_tier.remote(expert.name, tier)
    log.info("admin tier move", extra={"expert": name, "tier": tier})
    return next(e for e in described if e["name"] == expert.name)


@admin.post("/v1/router/reload")
async def reload_router(request: Request) -> dict[str, Any]:
    """Re-read the router artifact (checksums verified); a refused artifact leaves the old router serving."""
    gateway = _gateway(request)
    try:
        holder = await asyncio.to_thread(RouterHolder, gateway.cfg, gateway.router.router.encoder)
    except (ArtifactError, ValueError) as err:
        log.warning("router reload refused", extra={"error": str(err)})
        raise Conflict(f"router artifact refused, the previous router keeps serving: {err}",
                       code="artifact_refused") from None
    gateway.router = holder
    return {"status": "reloaded", "router": holder.describe()}
