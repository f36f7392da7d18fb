"""BEIR eval helpers: oracle-gain arithmetic, JSON shape of the table, the PNG plot, CLI registration."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eval.beir import _gain_captured, plot_ndcg

TABLE = {"base": {"a": 0.40, "avg": 0.40}, "router_mean": {"a": 0.43, "avg": 0.43},
         "router_nearest": {"a": 0.41, "avg": 0.41}, "oracle": {"a": 0.50, "avg": 0.50}}


def test_oracle_gain_captured() -> None:
    assert _gain_captured(TABLE) == {"mean": pytest.approx(0.3), "nearest": pytest.approx(0.1)}
    assert _gain_captured({"base": {"avg": 0.4}}) == {}


def test_plot_writes_a_png(tmp_path: Path) -> None:
    plot_ndcg(TABLE, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_registers_the_retrieval_commands() -> None:
    from coe.commands.retrieval import register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    groups = {g: sub.add_parser(g).add_subparsers(dest=f"{g}_command") for g in ("train", "eval")}
    register(sub, groups)
    args = parser.parse_args(["eval", "beir", "scifact", "--json", "x.json"])
    assert args.datasets == ["scifact"] and args.json == "x.json"
    assert parser.parse_args(["train", "retriever-router", "--k", "4"]).k == 4
    assert parser.parse_args(["train", "retriever-expert", "npl"]).dataset == "npl"
    assert parser.parse_args(["train", "retriever-expert", "npl", "--steps", "240"]).steps == 240
    assert parser.parse_args(["index", "--corpus", "adi"]).corpus == ["adi"]
