"""The typed messages between gateway and deployments: what a refusal carries, and that all of them survive the
pickling Ray applies to them."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

from coe.api.errors import ExpertUnavailable, NotFound, Overloaded
from coe.serve.messages import EmbedAnswer, Refusal, RetrieveAnswer, memory_refusal
from experts.llm.base import Chunk, GenerationRequest, Message
from experts.memory import MemoryBusyError, QueueFullError


@pytest.mark.parametrize("error,cls", [(QueueFullError("full"), Overloaded),
                                       (MemoryBusyError("busy"), ExpertUnavailable)])
def test_memory_errors_become_refusals_of_the_hierarchy(error, cls):
    refusal = memory_refusal(error)
    assert type(refusal.error) is cls and refusal.error.message == str(error) and refusal.error.param == "model"


@pytest.mark.parametrize("message", [
    GenerationRequest(messages=(Message("user", "hi"),), max_tokens=3, stop=("\n",), seed=1, routing_trace=True),
    Chunk(text="ok", finish_reason="stop", prompt_tokens=2, completion_tokens=1, routing_trace={"mean": [0.5]}),
    Refusal(NotFound("corpus 'x' is configured but its data is missing here", "corpus")),
    RetrieveAnswer(["scifact"], b'[{"results":[]}]'),
    EmbedAnswer([[0.0, 1.0]], [{"expert": "base"}]),
], ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_messages_round_trip_as_ray_pickles_them(message, dumps):
    back = pickle.loads(dumps(message))
    if isinstance(message, Refusal):  # exceptions compare by identity: compare what the client would get
        assert type(back.error) is type(message.error) and back.error.body() == message.error.body()
        assert back.error.status == 404
    else:
        assert back == message
