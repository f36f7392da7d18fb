"""Pseudo-queries cut from a corpus's own documents: more in-domain training pairs than the few judged queries.

The classic collections have 39–113 training queries per domain, which an adapter fits and does not generalise
from. A span of a document's body (or its title, when the body does not repeat it) is a short query in the
domain's own words whose relevant document is known: the inverse-cloze idea of ICT, without an LLM.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from experts.embed.beir import Document


@dataclass(frozen=True)
class PseudoQuery:
    text: str
    doc_id: str


def _body_span(words: list[str], rng: random.Random, min_words: int, max_words: int) -> str:
    length = min(len(words), rng.randint(min_words, max_words))
    start = rng.randint(0, len(words) - length)
    return " ".join(words[start:start + length])


def pseudo_query(doc: Document, rng: random.Random, min_words: int = 6, max_words: int = 16,
                 title_share: float = 0.3) -> str | None:
    """One query for `doc`: its title (share `title_share`, when the body does not start with it) or a body span.

    None when the document has fewer than `min_words` words to cut from (a title-only record, an empty body).
    """
    title = doc.title.strip()
    words = doc.text.split()
    title_repeated = bool(title) and doc.text.lower().startswith(title.lower()[: max(10, len(title) // 2)])
    if title and not title_repeated and len(title.split()) >= 3 and (len(words) < min_words or
                                                                      rng.random() < title_share):
        return title
    if title_repeated:  # cranfield-style records: skip the copied title so the span is not the title again
        words = words[len(title.split()):]
    if len(words) < min_words:
        return None
    return _body_span(words, rng, min_words, max_words)


def pseudo_queries(corpus: dict[str, Document], count: int, seed: int = 0, min_words: int = 6,
                   max_words: int = 16) -> list[PseudoQuery]:
    """Up to `count` pseudo-queries, one per document, from documents drawn without replacement (seeded)."""
    if count <= 0:
        return []
    rng = random.Random(seed)
    ids = sorted(corpus)
    rng.shuffle(ids)
    out: list[PseudoQuery] = []
    for doc_id in ids:
        text = pseudo_query(corpus[doc_id], rng, min_words, max_words)
        if text is not None:
            out.append(PseudoQuery(text, doc_id))
        if len(out) == count:
            break
    return out
