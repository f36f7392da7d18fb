"""PilotRouter: picks the expert whose pilots are closest, both rules; experts are independent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routers.artifacts import ArtifactError
from routers.base import RouteInput
from routers.retriever import PilotRouter


def clusters(seed: int = 0, n: int = 40, dim: int = 16) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Three well-separated synthetic domains; pilots from half the points, queries from the other half."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim, dtype=np.float32)[:3] * 4
    pilots, queries, labels = {}, [], []
    for name, centre in zip(["bio", "aero", "lib"], centres, strict=True):
        pts = centre + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
        pilots[name] = pts[: n // 2][:4]
        queries.append(pts[n // 2:])
        labels += [name] * (n - n // 2)
    return pilots, np.vstack(queries), labels


@pytest.mark.parametrize("rule", ["mean", "nearest"])
def test_routes_synthetic_clusters_to_their_expert(rule: str) -> None:
    pilots, queries, labels = clusters()
    decisions = PilotRouter(pilots, rule=rule).route_embeddings(queries)
    assert [d.expert for d in decisions] == labels
    assert set(decisions[0].scores) == {"bio", "aero", "lib"}
    assert decisions[0].weights == {"bio": 1.0}


def test_mean_and_nearest_differ_where_they_should() -> None:
    # expert a: one pilot right on the query, one far away; expert b: two pilots moderately close
    a = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=np.float32)
    b = np.array([[0.8, 0.6, 0.0], [0.8, 0.0, 0.6]], dtype=np.float32)
    router = PilotRouter({"a": a, "b": b})
    q = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    assert router.route_embeddings(q, "nearest")[0].expert == "a"
    assert router.route_embeddings(q, "mean")[0].expert == "b"
    np.testing.assert_allclose(router.scores(q, "mean"), [[0.0, 0.8]], atol=1e-6)
    np.testing.assert_allclose(router.scores(q, "nearest"), [[1.0, 0.8]], atol=1e-6)


def test_route_uses_the_passed_encoder() -> None:
    class Fixed:
        def encode(self, texts: list[str]) -> np.ndarray:
            return np.array([[0.0, 1.0] if "wing" in t else [1.0, 0.0] for t in texts], dtype=np.float32)

    router = PilotRouter({"bio": np.array([[1.0, 0.0]]), "aero": np.array([[0.0, 1.0]])}, encoder=Fixed())
    out = router.route([RouteInput("wing flutter"), RouteInput("protein folding")])
    assert [d.expert for d in out] == ["aero", "bio"]


def test_artifact_round_trip_and_corruption(tmp_path: Path) -> None:
    pilots, queries, labels = clusters()
    PilotRouter(pilots, rule="nearest").save(tmp_path / "r", {"k": 4}, command="test")
    loaded = PilotRouter.from_artifact(tmp_path / "r")
    assert loaded.rule == "nearest" and loaded.experts == ["bio", "aero", "lib"]
    assert PilotRouter.from_artifact(tmp_path / "r", rule="mean").rule == "mean"
    assert [d.expert for d in loaded.route_embeddings(queries)] == labels
    (tmp_path / "r" / "weights.safetensors").write_bytes(b"junk")
    with pytest.raises(ArtifactError, match="weights.safetensors"):
        PilotRouter.from_artifact(tmp_path / "r")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="rule must be one of"):
        PilotRouter({"a": np.ones((1, 2))}, rule="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one dimension"):
        PilotRouter({"a": np.ones((1, 2)), "b": np.ones((1, 3))})
    with pytest.raises(ValueError, match=r"must be \[n, 2\]"):
        PilotRouter({"a": np.ones((1, 2))}).scores(np.ones((1, 3)))
