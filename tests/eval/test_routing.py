"""The routing frontier end to end on fake experts with known answers: exact accuracies and costs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "routers" / "train"))
from fakes import Factory, KeywordEncoder, write_config, write_dataset  # noqa: E402

from eval.routing import Point, hull_line, line_accuracy, line_gap_se, line_mix, run_routing_eval  # noqa: E402
from routers.artifacts import save_artifact  # noqa: E402
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION  # noqa: E402


def test_hull_line_skips_dominated_points():
    hull = hull_line([Point("s", 0.135, 0.30), Point("m", 0.27, 0.28), Point("b", 0.49, 0.40)])
    assert hull == [(0.135, 0.30), (0.49, 0.40)]
    assert line_accuracy(hull, 0.3125) == pytest.approx(0.35)
    assert line_accuracy(hull, 1.0) == pytest.approx(0.40)


def test_line_mix_and_the_paired_standard_error():
    singles = [Point("s", 0.135, 0.30), Point("m", 0.27, 0.28), Point("b", 0.49, 0.40)]
    mix = line_mix(singles, 0.3125)
    assert mix == pytest.approx({"s": 0.5, "b": 0.5})  # m lies under the hull: never mixed in
    assert line_mix(singles, 0.1) == {"s": 1.0} and line_mix(singles, 0.6) == {"b": 1.0}
    correct = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=float)
    picked = np.array([1, 1, 1, 0], dtype=float)
    # line per question: 0.5 * s + 0.5 * b = [1, .5, .5, 0]; gaps [0, .5, .5, 0]: SD 0.2887 / sqrt(4)
    assert line_gap_se(picked, mix, ["s", "m", "b"], correct) == pytest.approx(np.std([0, .5, .5, 0], ddof=1) / 2)


def test_frontier_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = write_config(tmp_path / "coe.yaml")
    art = tmp_path / "art"
    meta = {
        "categories": ["math", "philosophy", "writing"],
        "temperature": 1.0,
        "tau_entropy": 0.5,
        "min_confidence": None,
        "category_map": {},
        "general_expert": "small",
    }
    save_artifact(art, ARTIFACT_KIND, ARTIFACT_VERSION, {"W": np.eye(3), "b": np.zeros(3)}, meta)
    out = tmp_path / "out" / "routing.json"
    result = run_routing_eval(
        "mmlu", None, out, write_dataset(tmp_path / "data"), cfg, art, encoder=KeywordEncoder(), factory=Factory()
    )
    assert result["heldout_questions"] == 8 and result["dev_questions"] == 8
    assert result["router_category_accuracy"] == 1.0 and result["router_super_category_accuracy"] == 1.0
    assert [(p["name"], p["accuracy"]) for p in result["singles"]] == [("big", 1.0), ("mathy", 0.5), ("small", 0.0)]
    assert result["best_single_accuracy"] == 1.0
    got = [(r["budget"], r["avg_active_params"], r["accuracy"]) for r in result["budgets"]]
    assert got == [
        (0.135, 0.135, 0.0),  # everything on the cheapest expert
        (0.2, 0.135, 0.0),  # mathy on math would cost 0.2025
        (0.27, 0.2025, 0.5),
        (0.35, 0.2025, 0.5),  # big on one category (0.3125) scores no better than mathy on math: cheaper wins
        (0.42, 0.38, 1.0),
        (0.49, 0.38, 1.0),
        (None, 0.38, 1.0),
    ]
    assert result["budgets"][4]["line_accuracy"] == pytest.approx(0.75)  # hull (0.27, .5)–(0.49, 1) at 0.38
    assert result["coe_top_budget_accuracy"] == 1.0
    base = {p["name"]: (round(p["avg_params"], 4), p["accuracy"]) for p in result["baselines"]}
    assert base == {
        "random routing": (round(0.895 / 3, 4), 0.5),
        "CoE, no fallback (top budget)": (0.38, 1.0),
        "oracle per category": (0.38, 1.0),
    }
    assert json.loads(out.read_text())["coe_top_budget_accuracy"] == 1.0
    assert out.with_suffix(".png").stat().st_size > 1000
