"""k-shot prompts, resumable score cache, per-category scores and the MILP map fit, on fake experts."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fakes import Factory, KeywordEncoder, write_config, write_dataset

from routers.artifacts import load_artifact, save_artifact
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION
from routers.train.answer_prior import AnswerScorer
from routers.train.category_map import fit_category_map
from routers.train.config import load_train_config
from routers.train.datasets import MMLUQuestion, mmlu_split
from routers.train.expert_scores import category_scores, kshot_prompt, score_experts

Q = MMLUQuestion("high_school_physics", 3, "What is 1+1?", ("1", "2", "3", "4"), 1)
SHOT = MMLUQuestion("high_school_physics", 0, "Pick A.", ("a", "b", "c", "d"), 0)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("COE_DATA_DIR", str(write_dataset(tmp_path / "data")))
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path / "cache"))
    return write_config(tmp_path / "coe.yaml")


def test_kshot_prompt_exact_and_shot_dropping():
    prompt, used = kshot_prompt(Q, [SHOT, SHOT], k=1, max_chars=10_000)
    assert used == 1
    assert prompt == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "Pick A.\nA. a\nB. b\nC. c\nD. d\nAnswer: A\n\n"
        "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
    )
    short, used = kshot_prompt(Q, [SHOT, SHOT], k=5, max_chars=len(prompt) - 1)
    assert used == 0 and short.endswith("about high school physics.\n\nWhat is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:")


def test_scores_are_cached_and_resumed(env):
    cfg = load_train_config(env)
    dev = mmlu_split(cfg, "dev")
    assert [q.id for q in dev] == ["alg/6", "alg/7", "alg/16", "alg/17", "rel/6", "rel/7", "rel/16", "rel/17"]
    first = Factory()
    recs = asyncio.run(score_experts(cfg.experts, dev[:4], 2, 6000, first))
    assert first.started == ["big", "mathy", "small"]
    assert all(len(b.prompts) == 4 for b in first.backends.values())
    assert all(b.tier == "disk" for b in first.backends.values())  # released after scoring
    again = Factory()
    asyncio.run(score_experts(cfg.experts, dev[:4], 2, 6000, again))
    assert again.started == []  # everything came from the cache
    more = Factory()
    recs = asyncio.run(score_experts(cfg.experts, dev, 2, 6000, more))
    assert [len(b.prompts) for b in more.backends.values()] == [4, 4, 4]  # only the missing rel questions
    correct = AnswerScorer().correctness(recs, [q.id for q in dev])
    scores, counts = category_scores(correct, dev, cfg.mmlu_subjects, cfg.categories)
    np.testing.assert_array_equal(counts, [4, 4, 0])
    np.testing.assert_array_equal(scores[:2], [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.isnan(scores[2]).all()
    assert recs["big"]["alg/6"].shots == 2 and recs["small"]["alg/6"].pred == 3


def test_fit_category_map_rewrites_the_artifact(env, tmp_path):
    art = tmp_path / "art"
    meta = {
        "categories": ["math", "philosophy", "writing"],
        "temperature": 1.0,
        "tau_entropy": 0.5,
        "min_confidence": None,
        "category_map": {"writing": "small"},
        "general_expert": "small",
    }
    save_artifact(art, ARTIFACT_KIND, ARTIFACT_VERSION, {"W": np.eye(3), "b": np.zeros(3)}, meta, command="train")
    summary = asyncio.run(fit_category_map(env, art, KeywordEncoder(), Factory()))
    # Unconstrained: math → mathy (ties with big, cheaper), philosophy → big; writing keeps its prior entry.
    assert summary["category_map"] == {"math": "mathy", "philosophy": "big", "writing": "small"}
    assert summary["expected_score"] == 1.0 and summary["avg_params_b"] == pytest.approx(0.38)
    assert summary["dev_accuracy"] == 1.0 and summary["dev_fallback_rate"] == 0.0
    loaded = load_artifact(art, ARTIFACT_KIND, ARTIFACT_VERSION)
    assert loaded.meta["category_map"] == summary["category_map"]
    assert loaded.meta["map_source"]["scores"]["philosophy"] == {"n": 4, "big": 1.0, "mathy": 0.0, "small": 0.0}
    assert loaded.manifest["command"].startswith("train && ")


def test_shrinkage_and_letter_prior_in_the_map_fit(env, tmp_path):
    art = tmp_path / "art"
    meta = {"categories": ["math", "philosophy", "writing"], "temperature": 1.0, "tau_entropy": 0.5,
            "min_confidence": None, "category_map": {}, "general_expert": "small"}
    save_artifact(art, ARTIFACT_KIND, ARTIFACT_VERSION, {"W": np.eye(3), "b": np.zeros(3)}, meta, command="train")
    cfg = write_config(env, scoring={"answer_prior": "dev", "shrinkage": "empirical_bayes"})
    summary = asyncio.run(fit_category_map(cfg, art, KeywordEncoder(), Factory()))
    # mathy is right on math (4/4) and wrong on philosophy (0/4): p = 0.5, sample variance 0.5, noise 0.0625,
    # weight 0.875, so its math score shrinks to 0.9375 and big (1.0 everywhere) now wins math outright.
    assert summary["scores"]["math"] == {"n": 4, "big": 1.0, "mathy": 0.9375, "small": 0.0,
                                         "raw": {"big": 1.0, "mathy": 1.0, "small": 0.0}}
    assert summary["category_map"] == {"math": "big", "philosophy": "big"}
    assert summary["category_signal"]["mathy"]["between_sd"] == pytest.approx(0.4375**0.5, abs=1e-4)
    # The fake experts' predictions cover the letters evenly, so each letter prior is uniform.
    assert summary["letter_priors"]["small"] == [0.25, 0.25, 0.25, 0.25]


def test_training_with_the_map_fit_writes_a_servable_artifact(env, tmp_path):
    from routers.coe import CoERouter
    from routers.train.coe_router import train_coe_router

    out = tmp_path / "router"
    report = train_coe_router(env, out, encoder=KeywordEncoder(), command="coe train coe-router",
                              fit_map=True, factory=Factory())
    assert report["category_map"]["source"] == "milp"
    assert report["category_map"]["map"] == {"math": "mathy", "philosophy": "big"}
    router = CoERouter.from_artifact(out, KeywordEncoder())
    assert router.category_map == report["category_map"]["map"]
    loaded = load_artifact(out, ARTIFACT_KIND, ARTIFACT_VERSION)
    assert loaded.manifest["command"] == "coe train coe-router"
    assert "| math | mathy |" in (out / "report.md").read_text()
    assert report["fallback"]["tau"] == router.tau_entropy  # the τ re-chosen with the fitted map, not phase 1's


def test_map_from_copies_the_map_and_tau_of_another_artifact(env, tmp_path):
    """--map-from: a retrain (e.g. with another encoder) keeps the source's MILP map and τ, and says so."""
    from routers.coe import CoERouter
    from routers.train.coe_router import train_coe_router

    source = tmp_path / "source"
    train_coe_router(env, source, encoder=KeywordEncoder(), fit_map=True, factory=Factory())
    meta = dict(load_artifact(source, ARTIFACT_KIND, ARTIFACT_VERSION).meta)
    meta["tau_entropy"] = 0.25  # a τ the 0/1 rule would not pick, to see it carried over
    save_artifact(source, ARTIFACT_KIND, ARTIFACT_VERSION, {"W": np.zeros((3, 2)), "b": np.zeros(2)}, meta)
    out = tmp_path / "copy"
    report = train_coe_router(env, out, encoder=KeywordEncoder(), map_from=source)
    router = CoERouter.from_artifact(out, KeywordEncoder())
    assert router.category_map == {"math": "mathy", "philosophy": "big"} and router.tau_entropy == 0.25
    assert report["category_map"]["source"] == f"copied from {source}"
    copied = load_artifact(out, ARTIFACT_KIND, ARTIFACT_VERSION).meta
    assert copied["map_source"]["method"] == "copied" and copied["map_source"]["from_method"] == "milp"
    assert copied["tau_rule"].startswith(f"copied from {source}")
