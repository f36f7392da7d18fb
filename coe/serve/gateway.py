"""The ingress deployment: validates, routes, calls the expert pools, streams SSE, exports metrics."""


import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from ray import serve

from coe.api.app import create_app
from coe.api.errors import BadRequest, CoeError, ExpertUnavailable, NotFound, Timeout
from coe.api.schemas import (
    ChatCompletionRequest,
    EmbeddingsRequest,
    RetrieveRequest,
    Usage,
    chat_chunk,
    chat_completion,
)
from coe.api.timing import PhaseTimer
from coe.config import CHAT_ROUTER_MODEL, RETRIEVER_MODEL, CoeConfig, ExpertConfig
from coe.serve.admin import AdminDeps, admin_routes
from coe.serve.fallback import ExpertCaller, ExpertStream
from coe.serve.messages import Refusal
from coe.serve.metrics import GatewayMetrics
from coe.serve.reliability import replica_guards
from coe.serve.route_runner import RouteRunner
from coe.serve.routing import RouterHolder
from experts.llm.base import GenerationRequest, Message
from routers.base import RouteDecision, RouteInput

log = logging.getLogger(__name__)


def last_user_text(req: ChatCompletionRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text()
    raise BadRequest("messages must contain at least one message with role 'user'", param="messages")


def check_limits(req: ChatCompletionRequest, cfg: CoeConfig) -> None:
    """Size limits on what a request may ask for, before any work is done."""
    if len(req.messages) > cfg.server.max_messages:
        raise BadRequest(f"{len(req.messages)} messages; the limit is {cfg.server.max_messages}", "messages")
    chars = sum(len(m.text()) for m in req.messages)
    if chars > cfg.server.max_chars:
        raise BadRequest(f"messages hold {chars} characters; the limit is {cfg.server.max_chars}", "messages")
    if not last_user_text(req).strip():
        raise BadRequest("the last user message is empty", "messages")


def resolve_max_tokens(req: ChatCompletionRequest, expert: ExpertConfig) -> int:
    asked = req.requested_max_tokens
    if asked is None:
        return expert.default_max_tokens
    if asked > expert.max_tokens_limit:
        raise BadRequest(f"max_tokens={asked} is above the limit {expert.max_tokens_limit} of expert "
                         f"{expert.name!r}", "max_tokens")
    return asked


def decision_headers(d: RouteDecision, route_ms: float) -> dict[str, str]:
    return {"x-coe-expert": d.expert, "x-coe-category": d.category or "", "x-coe-route-ms": f"{route_ms:.2f}"}


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


@serve.deployment(name="gateway")
@serve.ingress()  # the app is built per replica by __serve_build_asgi_app__, over this replica's dependencies
class Gateway:
    """The single front door; holds the router in-process and a DeploymentHandle per expert pool."""

    def __init__(self, config: dict[str, Any], pools: dict[str, Any], retriever: Any = None,
                 auth: list[dict[str, str]] | None = None) -> None:
        self.cfg = CoeConfig.model_validate(config)
        self.pools = pools
        self.retriever = retriever
        self.metrics = GatewayMetrics()
        self.keys, self.rate_limiter = replica_guards(self.cfg, auth)  # coe/serve/reliability.py
        self.caller = ExpertCaller(self.cfg, pools, self.metrics.registry)  # deadline, breakers, fallback expert
        self.router = RouterHolder(self.cfg, pools=self.pools)  # glider llm mode writes through a pool
        rc = self.cfg.router  # an LLM writing GLIDER instructions on a cache miss must never block the loop
        slow_misses = rc.type == "glider" and rc.glider.instruction_mode == "llm"
        if slow_misses:  # the runner then makes no call: warm the encoder without asking the writer's pool
            self.router.warm_up()
        self.route_runner = RouteRunner.measured(self.route_many,
                                                 0.0 if slow_misses else self.cfg.server.router_inline_max_ms,
                                                 max_batch=self.cfg.server.router_max_batch)
        self.created = int(time.time())

    def __serve_build_asgi_app__(self) -> FastAPI:
        """This replica's FastAPI app (Serve calls it after __init__): the routes below and the admin routes, with
        the keys, rate limiter and body limit passed in (coe/api/app.py)."""
        admin = AdminDeps(self.cfg, self.pools, self.caller.breakers, self.reload_router)
        return create_app([self.api_routes(), admin_routes(admin)], keys=self.keys, rate_limiter=self.rate_limiter,
                          max_body_bytes=self.cfg.server.max_body_bytes)

    def api_routes(self) -> APIRouter:
        routes = APIRouter()
        routes.add_api_route("/v1/chat/completions", self.chat_completions, methods=["POST"])
        routes.add_api_route("/v1/models", self.models, methods=["GET"])
        routes.add_api_route("/health", self.health, methods=["GET"])
        routes.add_api_route("/metrics", self.metrics_endpoint, methods=["GET"])
        routes.add_api_route("/v1/retrieve", self.retrieve, methods=["POST"])
        routes.add_api_route("/v1/embeddings", self.embeddings, methods=["POST"])
        routes.add_api_route("/v1/corpora", self.corpora, methods=["GET"])
        return routes

    async def reload_router(self) -> RouterHolder:
        """Admin: the router over the artifact as it is on disk now; raises (old router kept) when refused."""
        self.router = await asyncio.to_thread(self.router.reloaded)
        return self.router

    # ---- routing -------------------------------------------------------------
    def route_many(self, texts: list[str]) -> list[RouteDecision]:
        return self.router.route([RouteInput(text=t) for t in texts])

    async def decide(self, req: ChatCompletionRequest) -> tuple[RouteDecision, float]:
        t0 = time.perf_counter()
        if req.model == CHAT_ROUTER_MODEL:
            decision = await self.route_runner.route(last_user_text(req))
        elif req.model in self.cfg.expert_names:
            decision = RouteDecision(expert=req.model, category=None, confidence=1.0, reason="direct", kind="direct")
        else:
            known = [CHAT_ROUTER_MODEL, *self.cfg.expert_names]
            raise NotFound(f"model {req.model!r} does not exist; available: {known}", "model",
                           "model_not_found")
        route_s = time.perf_counter() - t0
        self.metrics.route_latency.observe(route_s)
        self.metrics.routes.labels(decision.expert, decision.category or "", decision.kind).inc()
        return decision, route_s * 1000

    def payload(self, req: ChatCompletionRequest, max_tokens: int) -> GenerationRequest:
        """What the expert pool gets (coe/serve/messages.py)."""
        return GenerationRequest(
            messages=tuple(Message(m.role, m.text()) for m in req.messages),
            max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p,
            stop=tuple(req.stop or ()), seed=req.seed,
            routing_trace=bool(req.coe and req.coe.routing_trace),
        )

    # ---- endpoints (api_routes) -------------------------------------------------
    async def chat_completions(self, body: ChatCompletionRequest, request: Request) -> Response:
        t0 = time.perf_counter()
        timer = PhaseTimer(request.scope)
        timer.mark("parse")  # arrival to here: the other middleware, reading the body, validating it
        status = 200
        expert_name = ""
        try:
            check_limits(body, self.cfg)
            decision, route_ms = await self.decide(body)
            timer.mark("route")
            expert_name = decision.expert
            payload = self.payload(body, resolve_max_tokens(body, self.cfg.expert(decision.expert)))
            # reliability: deadline, circuit breaker, fallback expert (coe/serve/fallback.py)
            routed, deadline = body.model == CHAT_ROUTER_MODEL, self.caller.deadline(time.monotonic())
            timer.mark("prepare")
            if body.stream:
                opened, decision = await self.caller.open_stream(decision, routed, payload, deadline)
            else:
                result, decision = await self.caller.complete(decision, routed, payload, deadline)
            timer.mark("expert")  # the one handle call (a stream: until its first item)
            expert_name = decision.expert
            expert = self.cfg.expert(decision.expert)
            headers = decision_headers(decision, route_ms)
            coe_info = decision.as_dict() | {"route_ms": round(route_ms, 3)}
            if body.stream:
                stream = self.stream_chat(expert, opened, coe_info)
                timer.mark("build")
                headers["server-timing"] = timer.header()
                return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
            usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                          total_tokens=result.prompt_tokens + result.completion_tokens)
            self.count_tokens(expert.name, usage)
            rid = f"chatcmpl-{uuid.uuid4().hex}"
            if result.routing_trace is not None:
                coe_info["routing_trace"] = result.routing_trace
            body_out = chat_completion(rid, int(time.time()), expert.name, result.text,
                                       result.finish_reason, usage, coe_info)
            content = json.dumps(body_out, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
            timer.mark("build")
            headers["server-timing"] = timer.header()
            return Response(content, media_type="application/json", headers=headers)
        except CoeError as err:
            status = err.status
            raise
        finally:
            self.metrics.requests.labels("chat", str(status)).inc()
            self.metrics.latency.labels("chat", expert_name).observe(time.perf_counter() - t0)

    async def stream_chat(self, expert: ExpertConfig, opened: ExpertStream,
                          coe_info: dict[str, Any]) -> AsyncIterator[str]:
        """SSE: a role chunk with the decision, content deltas, a final chunk with usage, then [DONE];
        a failure after the start ends the stream with an OpenAI-shaped error event before [DONE]."""
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        yield _sse(chat_chunk(rid, created, expert.name, {"role": "assistant", "content": ""}, None, coe_info))
        items = opened.items()
        try:
            async for item in items:
                if item.text:
                    yield _sse(chat_chunk(rid, created, expert.name, {"content": item.text}, None))
                if item.finish_reason:
                    usage = Usage(prompt_tokens=item.prompt_tokens, completion_tokens=item.completion_tokens,
                                  total_tokens=item.prompt_tokens + item.completion_tokens)
                    self.count_tokens(expert.name, usage)
                    trace = {"routing_trace": item.routing_trace} if item.routing_trace is not None else None
                    yield _sse(chat_chunk(rid, created, expert.name, {}, item.finish_reason, coe=trace,
                                          usage=usage))
        except CoeError as err:
            yield _sse(err.body())
        except Exception as err:
            log.warning("stream failed", extra={"expert": expert.name, "error": str(err)})
            yield _sse(ExpertUnavailable(f"expert {expert.name!r} failed mid-stream: "
                                         f"{type(err).__name__}").body())
        finally:
            await items.aclose()
        yield "data: [DONE]\n\n"

    def count_tokens(self, expert: str, usage: Usage) -> None:
        self.metrics.tokens.labels(expert, "prompt").inc(usage.prompt_tokens)
        self.metrics.tokens.labels(expert, "completion").inc(usage.completion_tokens)

    async def models(self) -> dict[str, Any]:
        data = [{"id": CHAT_ROUTER_MODEL, "object": "model", "created": self.created, "owned_by": "coe",
                 "coe": {"kind": "router"}}]
        for e in self.cfg.experts:
            data.append({"id": e.name, "object": "model", "created": self.created, "owned_by": "coe",
                         "coe": {"kind": "expert", "backend": e.backend, "model": e.model,
                                 "description": e.description, "max_tokens_limit": e.max_tokens_limit}
                         | ({"kind": "lora-expert", "base": e.base, "adapter": str(e.adapter)} if e.base else {})})
        if self.cfg.retrieval is not None:
            data.append({"id": RETRIEVER_MODEL, "object": "model", "created": self.created, "owned_by": "coe",
                         "coe": {"kind": "embedding-router"}})
            data += [{"id": f"{RETRIEVER_MODEL}/{name}", "object": "model", "created": self.created,
                      "owned_by": "coe", "coe": {"kind": "embedding-expert"}}
                     for name in ["base", *self.cfg.retrieval.experts]]
        return {"object": "list", "data": data}

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "experts": self.cfg.expert_names,
                "router": self.router.describe() | {"runner": self.route_runner.describe()}}

    async def metrics_endpoint(self) -> Response:
        snapshots = await self.pool_calls("memory_snapshot")
        return Response(self.metrics.render(memory=snapshots), media_type="text/plain; version=0.0.4")

    async def pool_calls(self, method: str, *args: Any) -> dict[str, Any]:
        """The same call on every pool, concurrently; pools that do not answer in time are left out."""
        names = list(self.pools)
        calls = [asyncio.wait_for(getattr(self.pools[n], method).remote(*args), 10) for n in names]
        results = await asyncio.gather(*calls, return_exceptions=True)
        return {n: r for n, r in zip(names, results, strict=True) if not isinstance(r, BaseException)}

    # ---- retrieval -----------------------------------------------------------
    def _retriever(self) -> Any:
        if self.retriever is None:
            raise NotFound("retrieval is not configured on this server (no `retrieval:` section)", "corpus")
        return self.retriever

    async def _call_retriever(self, method: str, *args: Any) -> Any:
        try:
            out = await asyncio.wait_for(getattr(self._retriever(), method).remote(*args),
                                         self.cfg.server.request_timeout_s)
        except TimeoutError:
            raise Timeout("the retriever did not answer in time") from None
        except CoeError:
            raise
        except Exception as err:
            log.warning("retriever call failed", extra={"error": str(err)})
            raise ExpertUnavailable(f"the retriever failed: {type(err).__name__}") from None
        if isinstance(out, Refusal):  # a bad request (unknown corpus or expert, empty query): 4xx
            raise out.error
        return out

    async def retrieve(self, body: RetrieveRequest, request: Request) -> Response:
        t0 = time.perf_counter()
        timer = PhaseTimer(request.scope)
        timer.mark("parse")
        status = 200
        try:
            try:
                texts = body.texts()
            except ValueError as err:
                raise BadRequest(str(err), "query") from None
            out = await self._call_retriever("retrieve", body.corpus, texts, body.top_k, body.expert)
            timer.mark("retriever")
            for expert in out.experts:
                self.metrics.routes.labels(expert, body.corpus, "retrieval").inc()
            # The retriever sent `data` as JSON bytes: wrap them, do not parse and re-encode ten documents.
            content = b"".join([b'{"object":"list","corpus":', json.dumps(body.corpus).encode(), b',"data":',
                                out.json, b"}"])
            timer.mark("build")
            return Response(content, media_type="application/json", headers={"server-timing": timer.header()})
        except CoeError as err:
            status = err.status
            raise
        finally:
            self.metrics.requests.labels("retrieve", str(status)).inc()
            self.metrics.latency.labels("retrieve", "").observe(time.perf_counter() - t0)

    async def embeddings(self, body: EmbeddingsRequest) -> dict[str, Any]:
        status = 200
        try:
            texts = body.texts()
            model = body.model.removeprefix(f"{RETRIEVER_MODEL}/")  # the ids /v1/models lists
            out = await self._call_retriever("embed", texts, model)
            data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(out.embeddings)]
            tokens = sum(len(t.split()) for t in texts)
            return {"object": "list", "model": body.model, "data": data, "coe": out.decisions,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        except CoeError as err:
            status = err.status
            raise
        finally:
            self.metrics.requests.labels("embeddings", str(status)).inc()

    async def corpora(self) -> dict[str, Any]:
        return {"object": "list", "data": await self._call_retriever("corpora")}
