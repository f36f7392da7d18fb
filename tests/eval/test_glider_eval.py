"""`coe eval glider` end to end on one item per task, with the committed LoRA experts and gates (real models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coe.cli import main
from eval.glider import paired_difference

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "artifacts" / "glider-moerging"
SYSTEMS = {"base", "best_single", "local_only", "global_only", "glider", "oracle"}


def test_eval_glider_writes_every_system_for_held_in_and_held_out(tmp_path):
    out = tmp_path / "glider.json"
    assert main(["eval", "glider", "--artifact", str(ARTIFACT), "--limit", "1", "--alphas", "10", "--speed-rounds", "1",
                 "--json", str(out), "--plot", str(tmp_path / "glider.png")]) == 0
    report = json.loads(out.read_text())
    for group in ("held_in", "held_out"):
        assert set(report[group]) == SYSTEMS
        assert all(0.0 <= v <= 1.0 for v in report[group].values())
        assert report[group]["oracle"] >= report[group]["best_single"]
    per_task, names = report["per_task"], report["experts"]
    for task, g in report["global_scores"].items():  # global-only = the expert nearest the task's instruction
        nearest = names[max(range(len(names)), key=lambda i: g[i])]
        assert per_task["global_only"][task] == per_task[f"expert:{nearest}"][task]
        assert report["task_instructions"][task]
    for group in ("held_in", "held_out"):  # every routed system has the right answer's nats, all positive
        assert set(report[f"{group}_answer_nats"]) >= {"base", "local_only", "global_only"}
        assert all(v > 0 for v in report[f"{group}_answer_nats"].values())
    held_in_pair = report["paired"]["held_in accuracy: glider - local_only"]
    assert held_in_pair["items"] == 3  # one item for each held-in task
    assert held_in_pair["diff"] == pytest.approx(report["held_in"]["glider"] - report["held_in"]["local_only"])
    assert report["global_top_expert"] == {t: names[max(range(len(names)), key=lambda i: g[i])]
                                           for t, g in report["global_scores"].items()}
    assert report["moerging_speed_ratio"] > 0
    lat = report["instruction_latency_ms"]
    assert lat["cached_mean"] < lat["uncached_mean"]
    assert (tmp_path / "glider.png").stat().st_size > 0


def test_paired_difference_is_the_mean_of_per_item_differences_with_its_standard_error():
    out = paired_difference(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]))
    d = np.array([1.0, 0.0, 0.0, 1.0])
    assert out == {"diff": 0.5, "se": pytest.approx(d.std(ddof=1) / 2), "items": 4}
