"""Task data of the LoRA experts: stable splits, no title leaking into its text, well-formed choice items."""

import pytest

from experts.embed.beir import Document
from experts.llm import tasks


def test_split_is_stable_and_about_one_in_five():
    ids = [str(i) for i in range(2000)]
    first = [tasks.split_of(i) for i in ids]
    assert first == [tasks.split_of(i) for i in ids]
    assert 0.15 < first.count("eval") / len(ids) < 0.25


def test_body_text_drops_a_leading_copy_of_the_title_and_is_cut():
    doc = Document(title="wing flutter .", text="wing flutter . " + "word " * 100)
    body = tasks.body_text(doc)
    assert not body.startswith("wing flutter")
    assert len(body.split()) == tasks.MAX_WORDS


def test_unknown_task_and_held_out_training_are_refused():
    with pytest.raises(tasks.UnknownTask, match="known"):
        tasks.task("nope")
    with pytest.raises(ValueError, match="no training examples"):
        tasks.examples("scifact-claim")


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_choice_items_have_the_right_title_among_four_distinct_ones(name):
    items = tasks.choice_items(name, limit=15)
    assert len(items) == 15
    for it in items:
        assert len(set(it.choices)) == tasks.CHOICES
        assert 0 <= it.answer < tasks.CHOICES
    assert items == tasks.choice_items(name, limit=15)  # deterministic
    assert len({it.answer for it in items}) > 1  # the right answer is not always in one place


def test_held_in_items_never_come_from_training_documents():
    trained = {e.prompt for e in tasks.examples("cisi-title", "train")}
    scored = {it.prompt for it in tasks.choice_items("cisi-title")}
    assert scored and not scored & trained
    assert tasks.HELD_IN and tasks.HELD_OUT and not set(tasks.HELD_IN) & set(tasks.HELD_OUT)


def test_eval_prompts_follow_the_choice_items_order():
    items = tasks.choice_items("adi-title")
    assert tasks.eval_prompts("adi-title") == [it.prompt for it in items]
