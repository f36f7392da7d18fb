"""Offline GLIDER: an expert LLM writes one task instruction per expert from a few of its examples; the texts are
embedded and saved as a `glider-router` artifact (texts in meta.json, readable and editable; embeddings in E).

python -m routers.train.glider --config configs/train/coe.yaml --out artifacts/glider-router
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from experts.llm.base import LLMBackend
from routers.artifacts import save_artifact
from routers.base import Encoder
from routers.glider import ARTIFACT_KIND, ARTIFACT_VERSION
from routers.glider_instructions import WRITER_PROMPT, clean_instruction, instruction_request

log = logging.getLogger(__name__)
T = TypeVar("T")


async def write_instruction(backend: LLMBackend, examples: list[str], max_tokens: int = 48,
                            prompt: str = WRITER_PROMPT) -> str:
    """One instruction from a served expert, through the backend protocol only."""
    request = instruction_request(examples, max_tokens, prompt)
    parts = [chunk.text async for chunk in backend.generate(request)]
    return clean_instruction("".join(parts))


class BackendWriter:
    """A synchronous InstructionWriter over an LLMBackend, for routers that write request instructions."""

    def __init__(self, backend: LLMBackend, max_tokens: int = 48, prompt: str = WRITER_PROMPT) -> None:
        self.backend = backend
        self.max_tokens = max_tokens
        self.prompt = prompt

    def __call__(self, examples: list[str]) -> str:
        return run_coroutine(write_instruction(self.backend, examples, self.max_tokens, self.prompt))


def load_writer(writer_ref: str, prompt: str = WRITER_PROMPT) -> BackendWriter:
    """An instruction writer over a served expert model, started in-process in float32 (off any pool)."""
    from experts.llm.base import BackendOptions
    from experts.llm.registry_models import resolve_model
    from experts.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend("glider-writer", resolve_model(writer_ref), BackendOptions(dtype="float32"))
    run_coroutine(backend.start())
    return BackendWriter(backend, prompt=prompt)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion from sync code, in a fresh thread so a running event loop (a Serve
    replica's constructor) is never re-entered."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def build_glider_artifact(
    examples: Mapping[str, list[str]],
    writer: BackendWriter,
    encoder: Encoder,
    out_dir: str | Path,
    *,
    writer_model: str = "",
    training_data: dict[str, str] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Write, embed and save one instruction per expert; returns the meta that was saved."""
    experts = sorted(examples)
    t0 = time.perf_counter()
    instructions = {e: writer(examples[e]) for e in experts}
    emb = np.asarray(encoder.encode([instructions[e] for e in experts]), dtype=np.float32)
    meta: dict[str, Any] = {
        "experts": experts,
        "instructions": instructions,
        "examples": {e: list(examples[e]) for e in experts},
        "writer_model": writer_model,
        "encoder": getattr(encoder, "ref", type(encoder).__name__),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    save_artifact(out_dir, ARTIFACT_KIND, ARTIFACT_VERSION, {"E": emb}, meta,
                  training_data=training_data, command=command)
    log.info("glider artifact written", extra={"out": str(out_dir), "experts": len(experts)})
    return meta


def expert_examples(train_config: str | Path, coe_artifact: str | Path, per_expert: int) -> dict[str, list[str]]:
    """A few dev-split MMLU questions per expert: from the subjects whose category the CoE map sends to it."""
    from routers.artifacts import load_artifact
    from routers.coe import ARTIFACT_KIND as COE_KIND
    from routers.train.config import load_train_config
    from routers.train.datasets import format_question, mmlu_split

    cfg = load_train_config(train_config)
    category_map = load_artifact(coe_artifact, COE_KIND).meta["category_map"]
    out: dict[str, list[str]] = {e: [] for e in sorted(set(category_map.values()))}
    questions = mmlu_split(cfg, "dev", cap=1)
    # Round-robin over subjects so each expert's examples cover several of its categories, not one.
    for q in questions:
        expert = category_map.get(cfg.mmlu_subjects[q.subject])
        if expert in out and len(out[expert]) < per_expert:
            out[expert].append(format_question(q))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write GLIDER task instructions and save the artifact")
    parser.add_argument("--config", default="configs/train/coe.yaml")
    parser.add_argument("--coe-artifact", default="artifacts/coe-router")
    parser.add_argument("--writer", default="registry:qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--out", default="artifacts/glider-router")
    args = parser.parse_args(argv)
    run(args.config, args.coe_artifact, args.writer, args.examples, args.out,
        f"python -m routers.train.glider --writer {args.writer} --examples {args.examples} --out {args.out}")


def run(config: str, coe_artifact: str, writer_ref: str, per_expert: int, out: str, command: str) -> dict[str, Any]:
    """Load the writer expert and the encoder (the CoE artifact's: GLIDER compares prompts embedded by it), then
    build the artifact."""
    from experts.embed.encoders import make_encoder
    from routers.artifacts import load_artifact
    from routers.coe import ARTIFACT_KIND as COE_KIND
    from routers.train.config import load_train_config
    from routers.train.datasets import training_data_checksums

    writer = load_writer(writer_ref)
    examples = expert_examples(config, coe_artifact, per_expert)
    encoder = make_encoder(str(load_artifact(coe_artifact, COE_KIND).meta.get("encoder", "registry:all-minilm-l6-v2")))
    return build_glider_artifact(
        examples, writer, encoder, out, writer_model=writer_ref,
        training_data=training_data_checksums(load_train_config(config)), command=command)


if __name__ == "__main__":
    main()
