"""Pilot construction: best-expert assignment with tie preference; per-group KMeans is independent."""

from __future__ import annotations

import numpy as np

from routers.train.retriever import assign_best, pilots_from_groups


def test_assign_best_prefers_listed_expert_on_ties() -> None:
    ndcg = {"base": {"q1": 0.5, "q2": 0.2, "q3": 0.0}, "sci": {"q1": 0.5, "q2": 0.9, "q3": 0.0},
            "npl": {"q1": 0.1, "q2": 0.9, "q3": 0.3}}
    assert assign_best(ndcg, ["sci", "base"]) == {"q1": "sci", "q2": "sci", "q3": "npl"}
    assert assign_best(ndcg, ["base"]) == {"q1": "base", "q2": "sci", "q3": "npl"}


def test_adding_a_group_changes_no_other_groups_pilots() -> None:
    rng = np.random.default_rng(1)
    groups = {"a": rng.normal(size=(30, 8)), "b": rng.normal(size=(12, 8)) + 3}
    before = pilots_from_groups(groups, k=4)
    after = pilots_from_groups({**groups, "c": rng.normal(size=(9, 8)) - 3}, k=4)
    for name in ("a", "b"):
        np.testing.assert_array_equal(after[name], before[name])
    assert after["c"].shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(after["c"], axis=1), 1.0, atol=1e-6)


def test_small_group_gets_one_pilot_per_member_and_empty_group_none() -> None:
    pilots = pilots_from_groups({"tiny": np.eye(3)[:2], "empty": np.zeros((0, 3))}, k=8)
    assert list(pilots) == ["tiny"]
    assert pilots["tiny"].shape == (2, 3)
