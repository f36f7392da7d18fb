"""`coe eval glider` end to end on one item per task, with the committed LoRA experts and gates (real models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coe.cli import main

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
    assert report["moerging_speed_ratio"] > 0
    lat = report["instruction_latency_ms"]
    assert lat["cached_mean"] < lat["uncached_mean"]
    assert (tmp_path / "glider.png").stat().st_size > 0
