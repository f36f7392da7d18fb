"""`coe train glider`, `coe train lora-expert` and `coe eval glider` register with their defaults."""

import argparse

import pytest

from coe.commands import glider


@pytest.fixture()
def parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    groups = {g: sub.add_parser(g).add_subparsers(dest=f"{g}_command") for g in ("train", "eval")}
    glider.register(sub, groups)
    return parser


def test_train_glider_defaults_to_request_level(parser):
    args = parser.parse_args(["train", "glider", "--examples", "2"])
    assert (args.func, args.examples, args.token) == (glider.run_glider, 2, False)
    assert glider.output_folder(args) == "artifacts/glider-router"
    assert args.writer == "registry:qwen2.5-coder-0.5b-instruct"


def test_train_glider_token_level_and_lora_expert(parser):
    args = parser.parse_args(["train", "glider", "--token", "--steps", "5"])
    assert glider.output_folder(args) == "artifacts/glider-moerging"
    assert args.experts.split(",")[0] == "artifacts/lora-experts/scifact-title" and args.steps == 5
    args = parser.parse_args(["train", "lora-expert", "cisi-title"])
    assert (args.func, args.task, args.out) == (glider.run_lora_expert, "cisi-title", None)


def test_eval_glider(parser):
    args = parser.parse_args(["eval", "glider", "--limit", "3"])
    assert (args.func, args.limit, args.alphas) == (glider.run_eval_glider, 3, "3,10,30")


def test_speed_only_updates_the_speed_keys_of_an_existing_report(tmp_path):
    speed = {"moerging_speed_ratio": 0.65, "tokens_per_second": {"base": 13.0, "moerging": 8.4}, "rounds": 3}
    path = tmp_path / "eval.json"
    assert glider.merged_speed(str(path), speed) == speed  # nothing there yet: the speed report alone
    path.write_text('{"held_in": {"glider": 0.49}, "moerging_speed_ratio": 1.97}')
    merged = glider.merged_speed(str(path), speed)
    assert merged["held_in"] == {"glider": 0.49} and merged["moerging_speed_ratio"] == 0.65
    assert merged["tokens_per_second"]["moerging"] == 8.4 and merged["speed_rounds"] == 3
    path.write_text('{"moerging_speed_ratio": 0.7}')  # an earlier speed-only report is replaced, not merged
    assert glider.merged_speed(str(path), speed) == speed


def test_lora_expert_command_trains_with_the_recipe_unless_a_flag_overrides_it(parser, monkeypatch):
    from experts.train.llm_lora import LoraExpertTrainConfig
    from routers.train import moerging

    seen = []
    monkeypatch.setattr(moerging, "build_lora_expert", lambda task, out, base, cfg, command: (
        seen.append(cfg) or {"stats": {}}))
    assert glider.run_lora_expert(parser.parse_args(["train", "lora-expert", "cisi-title"])) == 0
    assert glider.run_lora_expert(parser.parse_args(["train", "lora-expert", "cisi-title", "--lr", "0.01"])) == 0
    assert seen[0] == LoraExpertTrainConfig()
    assert seen[1] == LoraExpertTrainConfig(lr=0.01)
