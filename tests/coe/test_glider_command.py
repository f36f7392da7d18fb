"""`coe train glider` registers on the CLI's train group with the artifact defaults."""

import argparse

from coe.commands import glider


def test_register_adds_train_glider():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    groups = {"train": sub.add_parser("train").add_subparsers(dest="train_command")}
    glider.register(sub, groups)
    args = parser.parse_args(["train", "glider", "--examples", "2"])
    assert (args.func, args.examples, args.out) == (glider.run_glider, 2, "artifacts/glider-router")
    assert args.writer == "registry:qwen2.5-coder-0.5b-instruct"
