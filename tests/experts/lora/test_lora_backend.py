"""Streaming from a LoRA expert: chunks as the batch decodes, the same text as the whole completion."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from experts.llm.base import GenerationRequest, Message
from experts.lora.backend import LoraExpertBackend, LoraGroup, LoraGroupOptions, streamable

ROOT = Path(__file__).resolve().parents[3]
CISI = ROOT / "artifacts" / "lora-experts" / "cisi-title"


@pytest.mark.parametrize("text, stop, out", [
    ("Hello wor", (), "Hello wor"),
    ("Hello ", (), "Hello"),  # trailing space may fold into the next token
    ("caf\ufffd", (), "caf"),  # half a UTF-8 character
    ("one two\n\nthree", ("\n\n",), "one two"),  # cut at a stop string
    ("one two\n", ("\n\n",), "one two"),  # could become the stop string
    ("one two##", ("###", "END"), "one two"),
    ("one two#x", ("###",), "one two#x"),
    ("Title: E", ("END",), "Title:"),  # "E" may start "END", then the space before it goes too
])
def test_streamable_keeps_back_what_may_still_change(text, stop, out):
    assert streamable(text, stop) == out


@pytest.fixture(scope="module")
def group(smollm2_path):
    g = LoraGroup(smollm2_path, {"cisi": CISI}, options=LoraGroupOptions(max_loras=1))
    asyncio.run(g.open())
    return g


async def collect(backend, request):
    return [c async for c in backend.generate(request)]


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["cisi", None])
def test_streamed_chunks_add_up_to_the_non_streamed_text(group, adapter):
    backend = LoraExpertBackend(group, adapter or "base", adapter, "smol")
    asyncio.run(backend.start())
    request = GenerationRequest(messages=(Message("user", "Text: wind tunnel tests of a swept wing\nTitle:"),),
                                max_tokens=16)
    chunks = asyncio.run(collect(backend, request))
    text = [c.text for c in chunks if c.text]
    assert len(text) > 2, text  # incremental, not one delta
    assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].completion_tokens > 0
    alone = group.runtime.generate_batch([_row(group, request, adapter)])[0]  # type: ignore[union-attr]
    assert "".join(text) == alone.text


def _row(group, request, adapter):
    from experts.lora.runtime import BatchRow

    slot = group.store.handles[adapter].slot if adapter else 0
    return BatchRow(slot, group.render(request), request.max_tokens, request.stop)


@pytest.mark.slow
def test_a_stop_string_ends_the_stream_where_the_whole_text_ends(group):
    backend = LoraExpertBackend(group, "cisi", "cisi", "smol")
    request = GenerationRequest(messages=(Message("user", "Count from one to ten in words, with spaces."),),
                                max_tokens=24, stop=("four",))
    chunks = asyncio.run(collect(backend, request))
    alone = group.runtime.generate_batch([_row(group, request, "cisi")])[0]
    assert "".join(c.text for c in chunks) == alone.text
    assert "four" not in alone.text
