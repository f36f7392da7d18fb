"""Offline token-level GLIDER: LoRA experts on one base model, then their gates and task instructions.

`coe train lora-expert TASK` trains one expert (experts/train/llm_lora.py) on a task of experts/llm/tasks.py;
`coe train glider --token` loads the experts, trains every gate with the LoRAs frozen (experts/train/llm_gates.py),
has a served LLM write one instruction per expert from a few of its task's inputs, embeds them, and saves the
`moerging-gates` artifact the MoErging backend serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experts.artifact_store import sha256_file
from experts.llm import tasks
from experts.llm.moerging_model import MoErgingModel, load_experts, save_gates
from experts.paths import require_data
from experts.train.llm_gates import GateTrainConfig, train_gates
from experts.train.llm_lora import LoraExpertTrainConfig, load_causal_lm, save_lora_expert, train_lora_expert

log = logging.getLogger(__name__)

DEFAULT_BASE = "registry:smollm2-135m-instruct"
DEFAULT_WRITER = "registry:qwen2.5-coder-0.5b-instruct"
# The same prompt describes an expert (from its training inputs) and an incoming task (from its requests), so
# the two instructions are comparable; inputs only, no answers: an incoming task has none.
TASK_WRITER_PROMPT = ("Below are example inputs from one task.\n\n{examples}\n\nDo not complete them. In one "
                      "sentence, write an instruction for this task that names its subject area, of the form "
                      "'Write the title of <kind of text> about <subject>'.")
INSTRUCTION_EXAMPLES = 4


def dataset_checksum(task_name: str) -> dict[str, str]:
    spec = tasks.task(task_name)
    folder = require_data(*spec.dataset.split("/"))
    return {f"{spec.dataset}/{f.name}": sha256_file(f) for f in sorted(folder.glob("*.jsonl"))}


def _progress(label: str, total: int):  # noqa: ANN202
    t0 = time.perf_counter()

    def on_step(step: int, loss: float) -> None:
        if step % 10 == 0 or step == total - 1:
            print(f"{label}: step {step + 1}/{total} loss {loss:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    return on_step


def build_lora_expert(task_name: str, out: str | Path, base_ref: str = DEFAULT_BASE,
                      cfg: LoraExpertTrainConfig | None = None, command: str = "") -> dict[str, Any]:
    """Train and save one LoRA expert on a held-in task's training split; returns the saved meta."""
    from experts.llm.registry_models import resolve_model

    spec = tasks.task(task_name)
    if not spec.held_in:
        raise ValueError(f"task {task_name!r} is held out (no expert may train on it); held-in: {tasks.HELD_IN}")
    cfg = cfg or LoraExpertTrainConfig()
    data = tasks.examples(task_name, "train")
    model, tok = load_causal_lm(resolve_model(base_ref))
    weights, stats = train_lora_expert(model, tok, data, cfg, _progress(task_name, cfg.steps))
    meta = {"name": task_name, "task": task_name, "base_model": base_ref, "stats": stats}
    save_lora_expert(out, weights, cfg, meta, training_data=dataset_checksum(task_name), command=command)
    return meta


def instruction_inputs(task_name: str, split: tasks.Split = "train", n: int = INSTRUCTION_EXAMPLES) -> list[str]:
    """A few task inputs (prompts without answers) to write an instruction from; deterministic."""
    spec = tasks.task(task_name)
    if spec.held_in and split == "train":
        prompts = [e.prompt for e in tasks.examples(task_name, "train")]
        step = max(1, len(prompts) // n)
        return prompts[::step][:n]
    return tasks.eval_prompts(task_name)[-n:]  # the last of the shuffled items: never among those scored


def build_moerging(expert_paths: Sequence[str], out: str | Path, writer_ref: str = DEFAULT_WRITER,
                   cfg: GateTrainConfig | None = None, command: str = "", alpha: float = 10.0,
                   top_k: int = 2) -> dict[str, Any]:
    """Gates (trained) + instructions (written and embedded) for LoRA experts; saved as a moerging-gates artifact."""
    from experts.embed.encoder import SentenceEncoder
    from experts.llm.registry_models import resolve_model
    from routers.train.glider import load_writer

    cfg = cfg or GateTrainConfig()
    experts = load_experts(expert_paths)
    task_names = [str(e.meta.get("task", e.name)) for e in experts]
    model, tok = load_causal_lm(resolve_model(experts[0].base_model))
    mm = MoErgingModel(model, experts, alpha=alpha, top_k=top_k)
    data = [tasks.examples(t, "train") for t in task_names]
    gate_stats = train_gates(mm, tok, data, cfg, _progress("gates", cfg.steps))
    gates = mm.gates()
    del mm, model

    write = load_writer(writer_ref, TASK_WRITER_PROMPT)
    t0 = time.perf_counter()
    instructions = {e.name: write(instruction_inputs(t)) for e, t in zip(experts, task_names, strict=True)}
    write_s = time.perf_counter() - t0
    encoder = SentenceEncoder()
    embeddings = np.asarray(encoder.encode([instructions[e.name] for e in experts]), dtype=np.float32)
    checksums: dict[str, str] = {}
    for t in task_names:
        checksums.update(dataset_checksum(t))
    meta = {"alpha": alpha, "top_k": top_k, "writer_model": writer_ref, "encoder": encoder.ref,
            "gate_training": {**cfg.model_dump(), **gate_stats}, "instruction_seconds": round(write_s, 1),
            "tasks": dict(zip([e.name for e in experts], task_names, strict=True))}
    save_gates(out, gates, embeddings, experts, instructions, meta, training_data=checksums, command=command)
    for name, text in instructions.items():
        log.info("instruction", extra={"expert": name, "text": text})
    return {**meta, "instructions": instructions}
