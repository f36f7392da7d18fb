"""`coe eval outcomes` end to end on small slices of the shared outcome tables (real MiniLM embeddings)."""

from __future__ import annotations

import json

import pytest

from coe.cli import main
from experts.paths import data_dir

pytestmark = pytest.mark.skipif(not (data_dir() / "outcomes").is_dir(), reason="needs COE_DATA_DIR/outcomes")

SINGLE_KEYS = {"accuracy", "avg_cost"}


def run(tmp_path, *args):
    out = tmp_path / "report.json"
    assert main(["eval", "outcomes", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text()), out


def test_several_folders_cv_report(tmp_path):
    folders = "routerdc/mmlu-train,routerdc/gsm8k-train,routerdc/humaneval-train"
    report, out = run(tmp_path, "--train", folders, "--cv", "3", "--limit", "40")
    systems = report["systems"]
    models = report["models"]
    assert len(models) == 7 and report["n_test"] == 120
    assert set(systems) == set(models) | {"random", "coe", "per_prompt", "oracle_category", "oracle_prompt"}
    for s in systems.values():
        assert {"accuracy", "avg_cost", "macro_accuracy"} <= set(s)
    assert set(report["per_dataset"]) == {"mmlu-train", "gsm8k-train", "humaneval-train"}
    best = report["best_single"]
    assert best["accuracy"] == max(s["macro_accuracy"] for n, s in systems.items() if n in models)
    # hindsight bounds every router: the per-prompt oracle is the best anyone can do at any cost
    assert systems["oracle_prompt"]["accuracy"] >= max(s["accuracy"] for s in systems.values()) - 1e-9
    assert systems["oracle_category"]["macro_accuracy"] >= best["accuracy"] - 1e-9
    for name in ("coe", "per_prompt"):
        points = report["frontier"][name]
        assert points[-1]["budget"] is None and len(points) > 3
        assert all(p["avg_cost"] <= p["budget"] + 1e-6 for p in points if p["budget"] is not None and name == "coe")
    assert "routellm" not in report and out.with_suffix(".png").is_file()


def test_two_model_table_has_routellm_metrics(tmp_path):
    report, _ = run(tmp_path, "--train", "routellm/gsm8k", "--cv", "2", "--limit", "120",
                    "--cost", "gpt-4-1106-preview=100")
    r = report["routellm"]
    assert r["strong"] == "gpt-4-1106-preview" and r["prompts"] + r["contaminated_excluded"] == 120
    for name in ("coe", "per_prompt", "random"):
        assert 0.0 <= r[name]["cpt50"] <= 1.0 and -1.0 < r[name]["apgr"] < 2.0
    assert report["costs"]["gpt-4-1106-preview"] == 100.0
    assert {"strong_share"} <= set(report["systems"]["per_prompt"])
    assert report["systems"]["gpt-4-1106-preview"]["strong_share"] == 1.0


def test_train_equal_to_test_needs_cv(tmp_path, capsys):
    assert main(["eval", "outcomes", "--train", "routellm/gsm8k", "--test", "routellm/gsm8k"]) == 2
    assert "use --cv K" in capsys.readouterr().err


def test_bad_table_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "t").mkdir()
    assert main(["eval", "outcomes", "--train", str(tmp_path / "t"), "--cv", "2"]) == 2
    assert "models.json: missing" in capsys.readouterr().err
