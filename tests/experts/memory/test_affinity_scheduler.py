"""Expert-affinity scheduling: resident expert first, FIFO mode, queue bounds, and the starvation bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experts.memory import ExpertQueues, QueueFullError


def fill(q: ExpertQueues, labels: str, now: float = 0.0) -> None:
    """labels like "a1 b1 a2": expert = first letter, item = the label."""
    for label in labels.split():
        q.push(label[0], label, now)


def drain(q: ExpertQueues, resident: set[str], now: float = 0.0) -> list[str]:
    out = []
    while (entry := q.pop(resident, now)) is not None:
        out.append(entry.item)
    return out


def test_affinity_serves_the_resident_expert_first():
    q: ExpertQueues[str] = ExpertQueues("affinity", max_skips=None)
    fill(q, "b1 a1 b2 a2 a3")
    assert drain(q, {"a"}) == ["a1", "a2", "a3", "b1", "b2"]


def test_affinity_stays_on_the_expert_it_just_served():
    q: ExpertQueues[str] = ExpertQueues("affinity", max_skips=None)
    fill(q, "a1 b1 b2 b3 a2")
    assert q.pop({"a", "b"}, 0.0).item == "b1"  # with no current expert, the resident one with most work
    assert q.pop({"a"}, 0.0).item == "a1"
    # a is the current expert and still resident: its queue goes first although b has more waiting
    assert drain(q, {"a", "b"}) == ["a2", "b2", "b3"]


def test_affinity_without_anything_resident_serves_the_oldest():
    q: ExpertQueues[str] = ExpertQueues("affinity", max_skips=None)
    fill(q, "c1 a1 c2")
    assert q.next_expert(set(), 0.0) == "c"
    assert q.pop(set(), 0.0).item == "c1"


def test_fifo_ignores_residency():
    q: ExpertQueues[str] = ExpertQueues("fifo")
    fill(q, "b1 a1 b2 a2")
    assert drain(q, {"a"}) == ["b1", "a1", "b2", "a2"]


def test_queue_bound_per_expert():
    q: ExpertQueues[str] = ExpertQueues(max_queue=2)
    fill(q, "a1 a2 b1")
    with pytest.raises(QueueFullError, match=r"expert 'a' has 2 requests queued \(limit 2\)"):
        q.push("a", "a3", 0.0)
    assert (len(q), q.queued("a"), q.queued("b")) == (3, 2, 1)


def test_max_skips_bounds_how_often_a_request_is_passed_over():
    q: ExpertQueues[str] = ExpertQueues("affinity", max_skips=2)
    fill(q, "b1 a1 a2 a3 a4")
    served = [q.pop({"a"}, 0.0) for _ in range(5)]
    assert [e.item for e in served] == ["a1", "a2", "b1", "a3", "a4"]
    assert served[2].skips == 2


def test_max_wait_bounds_how_long_a_request_is_passed_over():
    q: ExpertQueues[str] = ExpertQueues("affinity", max_skips=None, max_wait_s=10.0)
    q.push("b", "b1", 0.0)
    for i in range(1, 6):
        q.push("a", f"a{i}", 1.0)
    assert [q.pop({"a"}, t).item for t in (2.0, 5.0, 9.9, 10.0, 10.0)] == ["a1", "a2", "a3", "b1", "a4"]


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown scheduling mode"):
        ExpertQueues("random")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(max_skips=st.integers(0, 5),
       ops=st.lists(st.one_of(st.sampled_from("abcd"), st.sets(st.sampled_from("abcd"))), max_size=120))
def test_no_request_is_passed_over_more_than_max_skips_times(max_skips, ops):
    """Random pushes (a letter) and pops (a resident set): a younger request is never served before an
    overdue one, so no request's skip count passes the bound."""
    q: ExpertQueues[int] = ExpertQueues("affinity", max_queue=1000, max_skips=max_skips)
    waiting: dict[int, int] = {}  # seq -> times passed over, counted independently of the scheduler
    for op in ops:
        if isinstance(op, str):
            entry = q.push(op, 0, 0.0)
            waiting[entry.seq] = 0
            continue
        entry = q.pop(op, 0.0)
        if entry is None:
            continue
        del waiting[entry.seq]
        for seq in waiting:
            if seq < entry.seq:
                waiting[seq] += 1
        assert entry.skips <= max_skips
        assert all(n <= max_skips for n in waiting.values())
