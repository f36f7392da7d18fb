"""Pseudo-queries: a title when the body does not repeat it, otherwise a contiguous span of the body; one per
document, seeded, and nothing for a document with too little text to cut from."""

from __future__ import annotations

import random

from experts.embed.beir import Document
from experts.train.pseudo_queries import pseudo_queries, pseudo_query

BODY = "the lift of a swept wing was measured in a slipstream at three propeller speeds and two angles of attack"


def test_a_title_the_body_does_not_repeat_can_be_the_query() -> None:
    doc = Document("Swept wings in propeller slipstreams", BODY)
    assert pseudo_query(doc, random.Random(0), title_share=1.0) == doc.title


def test_a_body_span_is_contiguous_and_within_the_length_bounds() -> None:
    doc = Document("", BODY)
    for seed in range(20):
        span = pseudo_query(doc, random.Random(seed), min_words=6, max_words=10)
        assert span is not None and span in BODY
        assert 6 <= len(span.split()) <= 10


def test_a_title_copied_into_the_body_is_never_cut_again() -> None:
    title = "experimental lift of swept wings ."
    doc = Document(title, f"{title} {BODY}")
    for seed in range(20):
        span = pseudo_query(doc, random.Random(seed), min_words=6, max_words=8, title_share=1.0)
        assert span is not None and span in BODY  # from the body after the copied title, not the title


def test_too_little_text_gives_no_query() -> None:
    assert pseudo_query(Document("", "too short"), random.Random(0)) is None
    assert pseudo_query(Document("Hi", ""), random.Random(0)) is None  # a title under three words is no query


def test_one_query_per_document_up_to_the_count_and_the_same_for_the_same_seed() -> None:
    corpus = {f"d{i}": Document("", f"{BODY} number {i}") for i in range(10)} | {"short": Document("", "no")}
    made = pseudo_queries(corpus, 6, seed=3)
    assert len(made) == 6 and len({p.doc_id for p in made}) == 6 and "short" not in {p.doc_id for p in made}
    assert made == pseudo_queries(corpus, 6, seed=3)
    assert made != pseudo_queries(corpus, 6, seed=4)
    assert len(pseudo_queries(corpus, 100)) == 10  # the short document is skipped, the rest used once each
    assert pseudo_queries(corpus, 0) == []
