"""Routers trained on a recorded outcome table, served by the real Serve app: an outcome-trained CoE artifact and
a per-prompt artifact, their 27 MMLU-Pro model names mapped onto two embedded experts with router.expert_aliases;
the served decision equals the one the same router makes in-process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from experts.paths import data_dir

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (data_dir() / "outcomes" / "mmlu_pro").is_dir(), reason="needs MMLU-Pro outcomes")]
SMOL = "registry:smollm2-135m-instruct"
PROMPTS = ["What is the derivative of x^3 + 2x with respect to x?\nA. 3x^2 + 2\nB. x^2\nC. 3x\nD. 2",
           "Which court case established judicial review in the United States?\nA. Marbury v. Madison\nB. Roe v. Wade"]


@pytest.fixture(scope="module")
def table_slice(tmp_path_factory):
    from eval.outcomes import limit_rows
    from routers.train.outcome_table import read_outcome_table, write_outcome_table

    table = read_outcome_table(data_dir() / "outcomes" / "mmlu_pro")
    sliced = limit_rows(table, 420, seed=3)
    return write_outcome_table(sliced, tmp_path_factory.mktemp("outcomes") / "mmlu_pro_slice"), table


def served_config(default_config, artifact: Path, router_type: str, models: list[str], costs: list[float]):
    cfg = default_config.model_copy(deep=True)
    base = next(e for e in cfg.experts if e.name == "smollm2-135m")
    cfg.experts = [base.model_copy(update={"name": "small-expert"}), base.model_copy(update={"name": "big-expert"})]
    cfg.router.type = router_type
    cfg.router.artifact = artifact
    cfg.router.encoder = json.loads((artifact / "meta.json").read_text())["encoder"]  # what the table was embedded with
    cfg.router.general_expert = "small-expert"
    cfg.router.min_confidence = None
    cfg.router.expert_aliases = {m: ("big-expert" if c >= 30 else "small-expert")
                                 for m, c in zip(models, costs, strict=True)}
    cfg.ray.app_name = f"coe-{router_type.replace('_', '-')}-outcomes"
    cfg.ray.route_prefix = f"/{router_type.replace('_', '-')}-outcomes"
    return cfg


def ask(url: str, prompt: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=600, json={
        "model": "coe", "max_tokens": 4, "messages": [{"role": "user", "content": prompt}]})


@pytest.mark.parametrize("router_type", ["coe", "per_prompt"])
def test_outcome_trained_router_is_served(deploy_side, default_config, table_slice, tmp_path, router_type):
    from ray import serve

    from coe.serve.routing import RouterHolder
    from routers.train.outcome_train import train_coe_from_outcomes, train_per_prompt_from_outcomes

    folder, table = table_slice
    train = train_coe_from_outcomes if router_type == "coe" else train_per_prompt_from_outcomes
    train([folder], tmp_path / "artifact", budget=40.0, command="test")
    cfg = served_config(default_config, tmp_path / "artifact", router_type, table.model_names, table.costs.tolist())
    holder = RouterHolder(cfg)
    expected = [holder.route_one(p) for p in PROMPTS]
    assert all(d.expert in {"small-expert", "big-expert"} for d in expected)
    url = deploy_side(cfg)
    try:
        for prompt, want in zip(PROMPTS, expected, strict=True):
            r = ask(url, prompt)
            assert r.status_code == 200, r.text
            coe = r.json()["coe"]
            assert coe["expert"] == want.expert == r.headers["x-coe-expert"] == r.json()["model"]
            assert coe["reason"] == want.reason
        assert httpx.get(f"{url}/health").json()["router"]["type"] == router_type
    finally:
        serve.delete(cfg.ray.app_name)


def test_unmapped_models_are_refused_by_the_coe_router(default_config, table_slice, tmp_path):
    from coe.serve.routing import RouterHolder
    from routers.train.outcome_train import train_coe_from_outcomes

    folder, table = table_slice
    train_coe_from_outcomes([folder], tmp_path / "artifact", budget=None, command="test")
    cfg = served_config(default_config, tmp_path / "artifact", "coe", table.model_names, table.costs.tolist())
    cfg.router.expert_aliases = {}
    with pytest.raises(ValueError, match="router.expert_aliases"):
        RouterHolder(cfg)
