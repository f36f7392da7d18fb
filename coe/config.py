"""One pydantic schema for the whole service, loaded from YAML and validated once at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coe.retrieval_config import NAME_PATTERN, RETRIEVER_MODEL, RetrievalConfig
from experts.llm.base import BackendOptions
from experts.memory.defaults import ACQUIRE_TIMEOUT_S, MAX_SKIPS, MAX_WAIT_S

CHAT_ROUTER_MODEL = "coe"
ROUTER_MODEL_NAMES = (CHAT_ROUTER_MODEL, RETRIEVER_MODEL)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourcesConfig(_Strict):
    """What one replica of a deployment asks Ray for (placement)."""

    num_cpus: float = Field(0.5, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory_bytes: int | None = Field(None, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)


class AutoscalingConfig(_Strict):
    """Replica bounds for Ray Serve autoscaling; min == max means a fixed replica count."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class VLLMOptions(_Strict):
    """Engine arguments passed through to vLLM (only the ones coe needs to reason about are typed)."""

    max_model_len: int = Field(2048, ge=64)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    enforce_eager: bool = False
    kv_cache_space_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on the CPU build (whole GiB)")
    enable_sleep_mode: bool = True
    extra: dict[str, Any] = Field(default_factory=dict)


class MoErgingOptions(_Strict):
    """Token-level GLIDER: the expert's model is the base, mixed per token with the LoRA experts of a gates artifact
    (`coe train glider --token`); alpha and top_k default to the artifact's."""

    artifact: Path = Field(description="a moerging-gates folder (it names the LoRA expert folders)")
    alpha: float | None = Field(None, ge=0, description="weight of the global (instruction-similarity) score")
    top_k: int | None = Field(None, ge=1, description="LoRA experts mixed per token and module")


_BACKEND = BackendOptions()  # the local backends' defaults are the config's: one source (experts/llm/base.py)
# A backend of one's own: "package.module:factory", a callable (ExpertConfig) -> LLMBackend imported in the pool's
# replica (so the module must be importable there). The tests' misbehaving experts are such backends.
BACKEND_PATTERN = r"^(transformers|vllm|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"


class ExpertConfig(_Strict):
    """One expert LLM: where its weights are, which backend runs it, how it is placed."""

    name: str = Field(pattern=NAME_PATTERN)
    backend: str = Field("transformers", pattern=BACKEND_PATTERN, description=(
        "transformers, vllm, or package.module:factory (a callable (ExpertConfig) -> LLMBackend)"))
    backend_options: dict[str, Any] = Field(default_factory=dict, description="read by a module:factory backend")
    model: str = Field("", description="registry:<name>, a Hugging Face id, or a local folder (LoRA experts: "
                       "the base's, filled in from `base`)")
    description: str = ""
    chat_template: bool = Field(_BACKEND.chat_template,
                                description="False for base models: messages become a completion prompt")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = _BACKEND.dtype
    params_b: float | None = Field(None, gt=0, description="active parameters in billions (cost); measured if unset")
    max_tokens_limit: int = Field(512, ge=1)
    default_max_tokens: int = Field(128, ge=1)
    context_length: int = Field(_BACKEND.context_length, ge=64)
    pool: str | None = Field(None, pattern=NAME_PATTERN, description="deployment that hosts it; own name if unset")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    max_queued_requests: int = Field(64, ge=1)
    max_ongoing_requests: int = Field(8, ge=1, description="requests a replica holds at once; more wait in the queue")
    timeout_s: float | None = Field(None, gt=0, description="per-attempt limit; unset: reliability.expert_timeout_s")
    vllm: VLLMOptions = Field(default_factory=VLLMOptions)
    moerging: MoErgingOptions | None = Field(None, description="serve as a MoErging expert (transformers only)")
    base: str | None = Field(None, description="LoRA expert: the expert (or model ref) its adapter fine-tunes; "
                             "experts sharing a base share one pool that holds the base once")
    adapter: Path | None = Field(None, description="LoRA expert: a `coe train lora-expert` or `coe compress-adapter` "
                                 "folder")

    @model_validator(mode="after")
    def _limits(self) -> ExpertConfig:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("default_max_tokens must be <= max_tokens_limit")
        if self.moerging is not None and self.backend != "transformers":
            raise ValueError("moerging needs backend: transformers (vLLM has no per-token LoRA mixing)")
        if (self.base is None) != (self.adapter is None):
            raise ValueError(f"expert {self.name!r}: a LoRA expert needs both base and adapter")
        if self.base is not None and self.moerging is not None:
            raise ValueError(f"expert {self.name!r}: a LoRA expert cannot also be a MoErging expert")
        if not self.model and self.base is None:
            raise ValueError(f"expert {self.name!r}: model is required (or base + adapter for a LoRA expert)")
        return self

    @property
    def pool_name(self) -> str:
        return self.pool or self.name


class GliderConfig(_Strict):
    """GLIDER on top of the CoE classifier (routers/glider.py): logits = log p_local + alpha * cos(E_i, q)."""

    artifact: Path = Path("artifacts/glider-router")
    alpha: float = Field(1.0, ge=0, description="weight of the global (instruction-similarity) score")
    top_k: int = Field(1, ge=1, description="experts kept in RouteDecision.weights; the top one serves")
    instruction_mode: Literal["cheap", "llm"] = Field(
        "cheap", description="cheap: q embeds the prompt; llm: q embeds an instruction an expert writes per task")
    instruction_expert: str | None = Field(None, description="the expert that writes llm-mode instructions; "
                                           "unset: router.general_expert")
    cache_size: int = Field(1024, ge=1, description="task instructions kept (LRU) in llm mode")


class CascadeConfig(_Strict):
    """A static-embedding classifier in front of the CoE one (routers/cascade.py): it answers when its max
    probability reaches `min_confidence`, the router's own encoder and artifact answer the rest."""

    artifact: Path = Field(description="a coe-router artifact trained with `encoder`")
    encoder: str = Field("model2vec:all-minilm-l6-v2", description="the fast encoder that artifact was trained with")
    min_confidence: float = Field(gt=0, le=1, description="pick it on the dev split: python -m eval.router_encoders")


class RouterConfig(_Strict):
    """The router behind model="coe"."""

    type: Literal["coe", "glider", "per_prompt"] = "coe"
    artifact: Path = Path("artifacts/coe-router")
    encoder: str = Field("onnx-int8:all-minilm-l6-v2", description=(
        "prompt encoder (experts/embed/encoders.py): registry:/onnx:/onnx-int8:/model2vec:<name>; must be the "
        "one the artifact was trained with"))
    general_expert: str
    entropy_threshold: float | None = Field(None, ge=0, description="overrides the artifact's tau")
    min_confidence: float | None = Field(
        None, ge=0, le=1, description="fallback when max category probability is below this (overrides tau')")
    category_map: dict[str, str] = Field(default_factory=dict, description="overrides the artifact's map")
    expert_aliases: dict[str, str] = Field(
        default_factory=dict, description="artifact expert name -> expert of this config (reuse a trained map)")
    glider: GliderConfig = Field(default_factory=GliderConfig, description="used when type is glider")
    cascade: CascadeConfig | None = Field(None, description="type coe only: a static first stage (unset: none)")

    @model_validator(mode="after")
    def _cascade_only_for_coe(self) -> RouterConfig:
        if self.cascade is not None and self.type != "coe":
            raise ValueError(f"router.cascade works with router.type coe only, not {self.type!r}")
        return self
    cost_penalty: float | None = Field(
        None, ge=0, description="per_prompt: λ of argmax(predicted outcome - λ·cost); overrides the artifact's")


class ServerConfig(_Strict):
    """HTTP front door: where it binds and what it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_messages: int = Field(64, ge=1)
    max_chars: int = Field(32_000, ge=1)
    request_timeout_s: float = Field(120.0, gt=0)
    gateway_replicas: int = Field(1, ge=1)
    gateway_autoscaling: AutoscalingConfig | None = Field(
        None, description="scale the gateway on load (overrides gateway_replicas)")
    gateway_resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="what one gateway replica asks Ray for (placement)")
    router_inline_max_ms: float = Field(
        2.0, ge=0, description="a router faster than this (measured at start) runs on the event loop; a slower "
                               "one on a dedicated thread that batches the prompts waiting for it")
    router_max_batch: int = Field(32, ge=1, description="most prompts the router thread encodes in one batch")


class AdapterTierConfig(_Strict):
    """LoRA adapters through the tiers, per base model: device slots, host copies, the rest on disk (vLLM:
    enable_lora with max_loras, max_cpu_loras, max_lora_rank)."""

    max_loras: int = Field(8, ge=1, description="adapters resident on the device (slots) per base")
    max_cpu_loras: int | None = Field(None, ge=1, description="host copies; None: no limit")
    max_lora_rank: int | None = Field(None, ge=1, description="slot rank; None: the largest adapter's")
    max_batch: int = Field(16, ge=1, description="requests (of any adapters) decoded in one mixed batch")
    batch_window_ms: float = Field(5.0, ge=0, description="how long the first request waits for company")


class MemoryConfig(_Strict):
    """Byte budgets of the weight tiers (device = HBM, or the materialised-model budget on CPU), per pool."""

    device_bytes: int | None = Field(None, ge=0, description="None: no limit, every expert stays materialised")
    host_bytes: int | None = Field(None, ge=0)
    disk_dir: Path | None = Field(None, description="where experts' safetensors live (the model cache by default)")
    policy: Literal["lru", "cost_aware"] = "lru"
    acquire_timeout_s: float = Field(ACQUIRE_TIMEOUT_S, gt=0, description="wait for device room, then 503")
    scheduling: Literal["affinity", "fifo"] = "affinity"
    max_skips: int | None = Field(MAX_SKIPS, ge=0, description="a queued request is passed over at most this often")
    max_wait_s: float | None = Field(MAX_WAIT_S, gt=0, description="... or for at most this long")
    prefetch_on_route: bool = Field(True, description="a pool starts moving an expert up when a request for it "
                                   "arrives, before it waits for a slot")
    concurrency: int = Field(1, ge=1, description="requests a tiered pool runs at once")
    adapters: AdapterTierConfig = Field(default_factory=lambda: AdapterTierConfig(),
                                        description="LoRA adapters of a pool's base (vLLM's names)")

    @property
    def tiered(self) -> bool:
        return self.device_bytes is not None or self.host_bytes is not None


# Ray Serve switches for the request path, e.g. RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=0 and
# RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP=0 (user code and each handle's router on the replica's own loop instead of
# threads of their own). Measured on this VM they changed nothing within noise (README, Performance: gateway
# overhead 32.2 vs 32.4 ms summed phases), while they would put the retriever's blocking batches on the replica's
# control loop, so none are set by default.
SERVE_REQUEST_PATH_ENV: dict[str, str] = {}


class RayConfig(_Strict):
    """How coe finds Ray: a fresh local instance unless an address is given."""

    address: str | None = Field(None, description="None: start a private local Ray; 'auto' or ray://host:port")
    num_cpus: int | None = Field(None, ge=1)
    namespace: str = "coe"
    app_name: str = "coe"
    route_prefix: str = "/"
    serve_env: dict[str, str] = Field(
        default_factory=lambda: dict(SERVE_REQUEST_PATH_ENV),
        description="Ray Serve switches set in the environment of a Ray coe starts (an operator's own "
                    "environment wins); a joined cluster must have them set where it was started")


# ---- reliability and security (issue 8) ---------------------------------------------------------------------
class AuthConfig(_Strict):
    """Where API keys come from; plain keys only ever in the environment, the file holds salted hashes."""

    keys_file: Path | None = Field(None, description="lines from `coe keys hash`: name scope salt hash")
    keys_env: str = Field("COE_API_KEYS", description="comma-separated plain keys with scope 'user'")
    admin_keys_env: str = Field("COE_ADMIN_KEYS", description="comma-separated plain keys with scope 'admin'")


class RateLimitConfig(_Strict):
    """Token bucket per API key (per client address when auth is off), per gateway replica."""

    requests_per_s: float | None = Field(20.0, gt=0, description="None: no rate limit")
    burst: int = Field(40, ge=1)


class BreakerConfig(_Strict):
    """Per-expert circuit breaker: opens after consecutive failures, probes again after a pause."""

    failure_threshold: int = Field(3, ge=1)
    reset_after_s: float = Field(30.0, gt=0)
    half_open_probes: int = Field(1, ge=1)


class ReliabilityConfig(_Strict):
    """Fallback, timeouts, rate limits and circuit breakers of the gateway."""

    fallback_expert: str | None = Field(None, description="unset: router.general_expert")
    expert_timeout_s: float = Field(60.0, gt=0, description="one expert attempt; the fallback gets what is left")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)


class CoeConfig(_Strict):
    """The whole system."""

    experts: list[ExpertConfig] = Field(min_length=1)
    router: RouterConfig
    server: ServerConfig = Field(default_factory=ServerConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    retrieval: RetrievalConfig | None = None
    auth: AuthConfig = Field(default_factory=AuthConfig)
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)

    @field_validator("experts")
    @classmethod
    def _unique_names(cls, experts: list[ExpertConfig]) -> list[ExpertConfig]:
        names = [e.name for e in experts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"expert names must be unique, repeated: {dupes}")
        clash = [n for n in names if n in ROUTER_MODEL_NAMES]
        if clash:
            raise ValueError(f"expert names {clash} are reserved for routers")
        return experts

    @model_validator(mode="after")
    def _router_refers_to_experts(self) -> CoeConfig:
        names = set(self.expert_names)
        if self.router.general_expert not in names:
            raise ValueError(f"router.general_expert {self.router.general_expert!r} is not an expert ({sorted(names)})")
        bad = {c: e for c, e in self.router.category_map.items() if e not in names}
        if bad:
            raise ValueError(f"router.category_map names unknown experts: {bad}")
        bad = {a: e for a, e in self.router.expert_aliases.items() if e not in names}
        if bad:
            raise ValueError(f"router.expert_aliases names unknown experts: {bad}")
        writer = self.router.glider.instruction_expert
        if writer is not None and writer not in names:
            raise ValueError(f"router.glider.instruction_expert {writer!r} is not an expert ({sorted(names)})")
        fallback = self.reliability.fallback_expert
        if fallback is not None and fallback not in names:
            raise ValueError(f"reliability.fallback_expert {fallback!r} is not an expert ({sorted(names)})")
        return self

    @model_validator(mode="after")
    def _lora_bases(self) -> CoeConfig:
        """A LoRA expert takes its base's model and pool; an unknown base is an error naming the expert."""
        from coe.lora_config import resolve_lora_bases

        resolve_lora_bases(self.experts)
        return self

    @model_validator(mode="after")
    def _pool_placement(self) -> CoeConfig:
        """The experts of one pool agree on its placement (after LoRA experts have joined their base's pool)."""
        from coe.pool_config import resolve_pool_placement

        resolve_pool_placement(self.experts)
        return self

    @property
    def fallback_expert(self) -> str:
        return self.reliability.fallback_expert or self.router.general_expert

    @property
    def expert_names(self) -> list[str]:
        return [e.name for e in self.experts]

    def expert(self, name: str) -> ExpertConfig:
        for e in self.experts:
            if e.name == name:
                return e
        raise KeyError(name)

    def pools(self) -> dict[str, list[ExpertConfig]]:
        """Experts grouped by the deployment that hosts them."""
        out: dict[str, list[ExpertConfig]] = {}
        for e in self.experts:
            out.setdefault(e.pool_name, []).append(e)
        return out


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<dict>") -> CoeConfig:
    """Validate a mapping; errors name the source and each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return CoeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: invalid config\n{_format_errors(err)}") from None


def load_config(path: str | Path) -> CoeConfig:
    """Read and validate a YAML config; relative artifact paths resolve against the repo root (cwd)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_config(data, str(p))

