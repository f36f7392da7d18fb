"""The outcome-table reader on small hand-made tables, and every bad input it must refuse clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routers.train.outcome_table import (
    DEFAULT_CLOSED_COST_B,
    OutcomeTableError,
    concat_tables,
    parse_costs,
    read_outcome_table,
    write_outcome_table,
)

MODELS = [{"name": "small", "active_params_b": 1.5}, {"name": "big", "active_params_b": None, "kind": "closed"}]


def make_table(root, prompts=None, scores="id,small,big\na,1,0\nb,0.5,1\n", models=None):
    root.mkdir(parents=True, exist_ok=True)
    prompts = prompts if prompts is not None else [
        {"id": "a", "prompt": "What is 2+2?", "category": "math", "contaminated": True},
        {"id": "b", "prompt": "Who wrote Hamlet?", "category": "literature"},
    ]
    (root / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (root / "scores.csv").write_text(scores)
    (root / "models.json").write_text(json.dumps(models if models is not None else MODELS))
    return root


def test_reads_a_small_table(tmp_path):
    t = read_outcome_table(make_table(tmp_path / "t"), costs={"big": 50.0})
    assert t.ids == ["a", "b"] and t.categories == ["math", "literature"]
    assert t.model_names == ["small", "big"]
    np.testing.assert_array_equal(t.scores, [[1.0, 0.0], [0.5, 1.0]])
    np.testing.assert_array_equal(t.costs, [1.5, 50.0])
    np.testing.assert_array_equal(t.contaminated, [True, False])
    assert t.models[1].active_params_b is None and t.models[1].kind == "closed"


def test_closed_model_gets_the_default_cost(tmp_path):
    assert read_outcome_table(make_table(tmp_path / "t")).costs[1] == DEFAULT_CLOSED_COST_B


def test_columns_may_come_in_any_order(tmp_path):
    t = read_outcome_table(make_table(tmp_path / "t", scores="id,big,small\nb,1,0.5\na,0,1\n"))
    np.testing.assert_array_equal(t.scores, [[1.0, 0.0], [0.5, 1.0]])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scores": "id,small\na,1\nb,0\n"}, r"no column for models listed in models.json: \['big'\]"),
    ({"scores": "id,small,big,huge\na,1,0,1\nb,0,1,1\n"}, r"columns name models missing from models.json: \['huge'\]"),
    ({"scores": "id,small,big\na,1,x\nb,0,1\n"}, r"scores.csv:2 column 'big': score 'x' is not a number"),
    ({"scores": "id,small,big\na,1,nan\nb,0,1\n"}, r"score 'nan' is not a finite number"),
    ({"scores": "id,small,big\na,1\nb,0,1\n"}, r"scores.csv:2: 2 fields, the header has 3"),
    ({"scores": "id,small,big\na,1,0\n"}, r"no scores for 1 prompts, e.g. 'b'"),
    ({"scores": "id,small,big\n"}, r"empty table \(no score rows\)"),
    ({"scores": "name,small,big\na,1,0\n"}, r"the first column must be 'id'"),
    ({"prompts": []}, r"prompts.jsonl: empty table \(no prompts\)"),
    ({"prompts": [{"id": "a", "prompt": "x"}]}, r"prompts.jsonl:1: needs a non-empty string 'category'"),
    ({"prompts": [{"id": "a", "prompt": "x", "category": "c"}] * 2}, r"prompt ids repeat"),
    ({"models": []}, r"must be a non-empty JSON list"),
    ({"models": [{"name": "small", "active_params_b": -1}, MODELS[1]]}, r"active_params_b must be a positive"),
    ({"models": [MODELS[0], MODELS[0]]}, r"model names repeat"),
])
def test_bad_tables_are_refused_with_the_reason(tmp_path, kwargs, message):
    with pytest.raises(OutcomeTableError, match=message):
        read_outcome_table(make_table(tmp_path / "t", **kwargs))


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(OutcomeTableError, match="outcome table folder not found"):
        read_outcome_table(tmp_path / "nowhere")
    root = make_table(tmp_path / "t")
    (root / "scores.csv").unlink()
    with pytest.raises(OutcomeTableError, match=r"scores.csv: missing"):
        read_outcome_table(root)


def test_a_cost_for_an_unknown_model_is_refused(tmp_path):
    with pytest.raises(OutcomeTableError, match=r"unknown models \['gpt-9'\]"):
        read_outcome_table(make_table(tmp_path / "t"), costs={"gpt-9": 1.0})


def test_concat_keeps_sources_and_refuses_other_models(tmp_path):
    a = read_outcome_table(make_table(tmp_path / "a"))
    b = read_outcome_table(make_table(tmp_path / "b"))
    both = concat_tables([a, b])
    assert len(both) == 4 and both.sources == [str(tmp_path / "a")] * 2 + [str(tmp_path / "b")] * 2
    other = read_outcome_table(make_table(tmp_path / "c", scores="id,small,huge\na,1,0\nb,0,1\n",
                                          models=[MODELS[0], {"name": "huge", "active_params_b": 9}]))
    with pytest.raises(OutcomeTableError, match="differ"):
        concat_tables([a, other])


def test_write_then_read_round_trips(tmp_path):
    t = read_outcome_table(make_table(tmp_path / "t"))
    back = read_outcome_table(write_outcome_table(t.subset([1, 0]), tmp_path / "copy"))
    assert back.ids == ["b", "a"] and back.model_names == t.model_names
    np.testing.assert_array_equal(back.scores, t.scores[[1, 0]])
    np.testing.assert_array_equal(back.contaminated, [False, True])


def test_parse_costs():
    assert parse_costs(["gpt-4=200", "org/model=7.5"]) == {"gpt-4": 200.0, "org/model": 7.5}
    for bad in ["gpt-4", "gpt-4=x", "=3", "m=-1"]:
        with pytest.raises(ValueError):
            parse_costs([bad])
