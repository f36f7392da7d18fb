"""OpenAI-compatible request and response models for the chat endpoint."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class CoeRequestOptions(BaseModel):
    """coe's own request options, in the `coe` field (OpenAI clients send it with `extra_body`)."""

    model_config = ConfigDict(extra="forbid")

    routing_trace: bool = Field(False, description="MoErging experts: return the per-module routing weights")


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat request that coe honours; unknown fields are ignored like OpenAI does."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="a 64-bit integer")
    n: int = Field(1, ge=1, le=1, description="coe returns one choice")
    user: str | None = None
    coe: CoeRequestOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must be non-empty")
        return stops

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def chat_completion(rid: str, created: int, expert: str, text: str, finish: str | None, usage: Usage,
                    coe: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": expert,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                     "logprobs": None}],
        "usage": usage.model_dump(),
        "coe": coe,
    }


def chat_chunk(rid: str, created: int, expert: str, delta: dict[str, Any], finish: str | None,
               coe: dict[str, Any] | None = None, usage: Usage | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": expert,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if coe is not None:
        out["coe"] = coe
    if usage is not None:
        out["usage"] = usage.model_dump()
    return out


class RetrieveRequest(BaseModel):
    """POST /v1/retrieve: one query or a batch, against one corpus; `expert` skips routing."""

    model_config = ConfigDict(extra="forbid")

    corpus: str = Field(min_length=1, max_length=64)
    query: str | None = None
    queries: list[str] | None = Field(None, min_length=1)
    top_k: int = Field(10, gt=0, le=1000)
    expert: str | None = Field(None, min_length=1, max_length=64)

    def texts(self) -> list[str]:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of `query` or `queries`")
        return [self.query] if self.query is not None else list(self.queries or [])


class EmbeddingsRequest(BaseModel):
    """POST /v1/embeddings (OpenAI shape): model="coe-retriever" routes, an expert name embeds directly."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=64)
    input: str | list[str]
    encoding_format: Literal["float"] = "float"

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
