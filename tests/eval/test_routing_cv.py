"""Dev cross-validation of the scoring variants on fake experts with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "routers" / "train"))
from fakes import Factory, write_config, write_dataset  # noqa: E402

from eval.routing_cv import run_dev_cv  # noqa: E402


def test_dev_cv_fits_on_one_bucket_and_measures_on_the_other(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COE_DATA_DIR", str(write_dataset(tmp_path / "data")))
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "cv.json"
    rows = run_dev_cv(write_config(tmp_path / "coe.yaml"), out, Factory())
    assert [(r["answer_prior"], r["shrinkage"]) for r in rows] == [
        ("none", "none"), ("none", "empirical_bayes"), ("dev", "none"), ("dev", "empirical_bayes")]
    raw = rows[0]
    # Each bucket holds two algebra and two religion questions: small knows neither, mathy algebra, big both.
    # At B = 0.27 the map puts mathy on math (cost 0.2025, accuracy 0.5) where the line offers 0.25.
    assert raw["gap_to_line"][:3] == [0.0, 0.0, 0.25]
    assert raw["top_budget_accuracy"] == raw["best_single_accuracy"] == 1.0
    assert all(len(r["gap_to_line"]) == 7 for r in rows)
    assert out.is_file() and "Dev cross-validation" in capsys.readouterr().out


def test_dev_cv_needs_two_dev_buckets(tmp_path, monkeypatch):
    monkeypatch.setenv("COE_DATA_DIR", str(write_dataset(tmp_path / "data")))
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = write_config(tmp_path / "coe.yaml", split={"train": [0, 1, 2, 3, 4, 5, 7], "dev": [6]})
    with pytest.raises(ValueError, match="exactly two dev buckets"):
        run_dev_cv(cfg, None, Factory())
