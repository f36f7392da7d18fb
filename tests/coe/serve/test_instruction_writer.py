"""GLIDER's llm-mode writer in the gateway goes through the writer expert's pool handle (a stand-in handle here:
the real path is a Serve DeploymentHandle, exercised by the e2e tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coe.api.errors import Overloaded
from coe.serve.instruction_writer import PoolWriter
from coe.serve.messages import Refusal
from experts.llm.base import Chunk
from routers.glider_instructions import EMPTY_INSTRUCTION, instruction_request


@dataclass
class Response:
    value: Any

    def result(self, timeout_s: float | None = None) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@dataclass
class Method:
    answers: list[Any]
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def remote(self, *args: Any) -> Response:
        self.calls.append(args)
        return Response(self.answers.pop(0))


@dataclass
class Handle:
    generate: Method


def test_the_writer_calls_its_expert_through_the_pool_and_cleans_the_text():
    handle = Handle(Method([Chunk("  Answer questions\n about   rivers. ", "stop"), Chunk("", "stop")]))
    writer = PoolWriter(handle, "smollm2-135m", timeout_s=5)
    assert writer(["Name a river."]) == "Answer questions about rivers."
    # the pool gets the training-time instruction request itself, typed
    assert handle.generate.calls[0] == ("smollm2-135m", instruction_request(["Name a river."]))
    assert writer(["x"]) == EMPTY_INSTRUCTION


def test_a_failed_or_overloaded_pool_gives_no_instruction():
    handle = Handle(Method([TimeoutError("no answer in 5 s"), Refusal(Overloaded("queue full", "model")),
                            {"text": "a dict is no answer"}]))
    writer = PoolWriter(handle, "smollm2-135m", timeout_s=5)
    assert writer(["q"]) is None and writer(["q"]) is None and writer(["q"]) is None
    assert writer.failures == 3
