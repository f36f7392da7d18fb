"""GLIDER's llm-mode writer in the gateway goes through the writer expert's pool handle (a stand-in handle here:
the real path is a Serve DeploymentHandle, exercised by the e2e tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coe.serve.expert_pool import to_generation_request
from coe.serve.instruction_writer import PoolWriter, writer_payload
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


def test_the_payload_is_the_training_time_instruction_request():
    assert to_generation_request(writer_payload(["q1", "q2"])) == instruction_request(["q1", "q2"])


def test_the_writer_calls_its_expert_through_the_pool_and_cleans_the_text():
    handle = Handle(Method([{"text": "  Answer questions\n about   rivers. ", "finish_reason": "stop"},
                            {"text": "", "finish_reason": "stop"}]))
    writer = PoolWriter(handle, "smollm2-135m", timeout_s=5)
    assert writer(["Name a river."]) == "Answer questions about rivers."
    assert handle.generate.calls[0] == ("smollm2-135m", writer_payload(["Name a river."]))
    assert writer(["x"]) == EMPTY_INSTRUCTION


def test_a_failed_or_overloaded_pool_gives_no_instruction():
    handle = Handle(Method([TimeoutError("no answer in 5 s"), {"error": {"status": 429, "message": "queue full"}}]))
    writer = PoolWriter(handle, "smollm2-135m", timeout_s=5)
    assert writer(["q"]) is None and writer(["q"]) is None
    assert writer.failures == 2
