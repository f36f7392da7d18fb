"""Admin routes over explicit dependencies (no app.state): listing, tier moves, router reload and its refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from coe.api.app import create_app
from coe.config import load_config
from coe.serve.admin import AdminDeps, admin_routes
from coe.serve.breaker import BreakerBoard
from routers.artifacts import ArtifactError

ROOT = Path(__file__).resolve().parents[3]
CFG = load_config(ROOT / "configs" / "default.yaml")


class Method:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def remote(self, *args: Any):
        self.calls.append(args)

        async def call():
            return self.fn(*args)

        return call()


class Pool:
    """A stand-in for a pool's DeploymentHandle: describe() and set_tier() of its experts."""

    def __init__(self, names: list[str]) -> None:
        self.tiers = {n: "host" for n in names}
        self.describe = Method(lambda: [{"name": n, "tier": t} for n, t in self.tiers.items()])
        self.set_tier = Method(self._set)

    def _set(self, name: str, tier: str) -> list[dict[str, Any]]:
        self.tiers[name] = tier
        return [{"name": n, "tier": t} for n, t in self.tiers.items()]


class Holder:
    def describe(self) -> dict[str, Any]:
        return {"type": "coe", "artifact": "new"}


def client(reload_error: Exception | None = None) -> tuple[TestClient, dict[str, Pool], list[str]]:
    pools = {name: Pool([e.name for e in experts]) for name, experts in CFG.pools().items()}
    reloads: list[str] = []

    async def reload_router():
        if reload_error is not None:
            raise reload_error
        reloads.append("done")
        return Holder()

    deps = AdminDeps(CFG, pools, BreakerBoard(CFG.reliability.breaker), reload_router)
    return TestClient(create_app([admin_routes(deps)])), pools, reloads


def test_list_and_move_go_through_the_pools_and_show_breakers():
    c, pools, _ = client()
    listed = c.get("/v1/experts").json()["data"]
    assert sorted(e["name"] for e in listed) == sorted(CFG.expert_names)
    assert {e["breaker"] for e in listed} == {"closed"}
    expert = CFG.experts[0]
    assert c.post(f"/v1/experts/{expert.name}/load").json() == {"name": expert.name, "tier": "device"}
    assert c.post(f"/v1/experts/{expert.name}/offload?tier=disk").json()["tier"] == "disk"
    assert pools[expert.pool_name].set_tier.calls == [(expert.name, "device"), (expert.name, "disk")]


def test_an_unknown_expert_is_a_404_naming_it():
    c, _, _ = client()
    r = c.post("/v1/experts/nope/load")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "expert_not_found" and "'nope'" in r.json()["error"]["message"]


def test_reload_swaps_through_the_gateway_and_a_refused_artifact_is_a_409():
    c, _, reloads = client()
    assert c.post("/v1/router/reload").json() == {"status": "reloaded", "router": {"type": "coe", "artifact": "new"}}
    assert reloads == ["done"]
    bad, _, _ = client(ArtifactError("artifacts/coe-router/meta.json: sha256 mismatch"))
    r = bad.post("/v1/router/reload")
    assert r.status_code == 409
    assert r.json()["error"] == {"message": "router artifact refused, the previous router keeps serving: "
                                            "artifacts/coe-router/meta.json: sha256 mismatch",
                                 "type": "invalid_request_error", "param": None, "code": "artifact_refused"}
