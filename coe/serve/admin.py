"""Admin endpoints (scope `admin`, enforced by coe.api.guard): expert tiers and router reload.

Load/offload move an expert between memory tiers through its pool's TierManager (refused while it is
pinned by requests). Names come from the URL and are only ever looked up in
the config, never turned into paths. The routes are built over explicit dependencies (`AdminDeps`), which the
gateway passes in when it builds its app: nothing is read from `app.state`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter

from coe.api.errors import Conflict, NotFound
from coe.config import CoeConfig, ExpertConfig
from coe.serve.breaker import BreakerBoard
from coe.serve.routing import RouterHolder
from routers.artifacts import ArtifactError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminDeps:
    """What the admin routes act on: the config, the pools' handles, the breakers, and the gateway's router
    reload (which swaps the router it serves, or raises and keeps the old one)."""

    cfg: CoeConfig
    pools: Mapping[str, Any]
    breakers: BreakerBoard
    reload_router: Callable[[], Awaitable[RouterHolder]]

    def expert(self, name: str) -> ExpertConfig:
        if name not in self.cfg.expert_names:
            raise NotFound(f"expert {name!r} does not exist; available: {self.cfg.expert_names}", "name",
                           "expert_not_found")
        return self.cfg.expert(name)

    async def describe(self) -> list[dict[str, Any]]:
        pools = await asyncio.gather(*(h.describe.remote() for h in self.pools.values()))
        breakers = self.breakers.snapshot()
        return [e | {"breaker": breakers.get(e["name"], "closed")} for pool in pools for e in pool]

    async def move(self, name: str, tier: str) -> dict[str, Any]:
        expert = self.expert(name)
        described = await self.pools[expert.pool_name].set_tier.remote(expert.name, tier)
        log.info("admin tier move", extra={"expert": name, "tier": tier})
        return next(e for e in described if e["name"] == expert.name)


def admin_routes(deps: AdminDeps) -> APIRouter:
    """/v1/experts (list, load, offload) and /v1/router/reload over `deps`."""
    admin = APIRouter(tags=["admin"])

    @admin.get("/v1/experts")
    async def list_experts() -> dict[str, Any]:
        """Every expert with its tier, generation counts and circuit breaker state."""
        return {"object": "list", "data": await deps.describe()}

    @admin.post("/v1/experts/{name}/load")
    async def load_expert(name: str) -> dict[str, Any]:
        """Make an expert device-resident."""
        return await deps.move(name, "device")

    @admin.post("/v1/experts/{name}/offload")
    async def offload_expert(name: str, tier: Literal["host", "disk"] = "host") -> dict[str, Any]:
        """Release an expert's device copy (host: keep weights in RAM; disk: drop them)."""
        return await deps.move(name, tier)

    @admin.post("/v1/router/reload")
    async def reload_router() -> dict[str, Any]:
        """Re-read the router artifact (checksums verified); a refused artifact leaves the old router serving."""
        try:
            holder = await deps.reload_router()
        except (ArtifactError, ValueError) as err:
            log.warning("router reload refused", extra={"error": str(err)})
            raise Conflict(f"router artifact refused, the previous router keeps serving: {err}",
                           code="artifact_refused") from None
        return {"status": "reloaded", "router": holder.describe()}

    return admin
