"""`coe eval glider`: token-level GLIDER over LoRA experts on held-in and held-out tasks, and what it costs.

Systems, all on the same base model and the same multiple-choice items (experts/llm/tasks.py, never trained on):
- base: the routing weights fixed at zero (W₀h only); expert:<name>: fixed one-hot (one LoRA alone);
- local_only: the trained gates alone (α = 0, top-2); global_only: every token to the expert whose instruction is
  most similar to the task's (the α → ∞, top-1 limit, computed exactly as that expert's one-hot run);
- glider α=a,k=k: gates + α × global scores, top-k renormalised; `glider` is the artifact's default (α, k),
  fixed before this evaluation, the sweep is reported beside it;
- best_single: the one expert with the best mean over a group's tasks; oracle: the best expert per task.
Beside accuracy, each system's nats per token of the right answer (lower is better; a far less noisy view of the
same routing than 4-way accuracy) and the paired differences the goals ask for (GLIDER − local-only on held-in,
GLIDER − base on held-out, per item on the same items) with their standard errors.
The task's instruction is written once per task by the artifact's writer LLM from inputs that are never scored
(cached per task), the expert instructions are the artifact's texts, both embedded with its encoder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.stats import print_table as stats_table
from experts.llm import tasks
from experts.llm.choice_scoring import score_choices
from experts.llm.moerging_backend import unit_rows
from experts.llm.moerging_model import GateArtifact, MoErgingModel, load_experts, load_gates

SPEED_PROMPTS = ("Text: the effect of wing sweep on the lift of a delta wing at supersonic speeds was measured\nTitle:",
                 "Text: we studied how library users search catalogues and what they find\nTitle:",
                 "Claim: vitamin D supplements lower the risk of fractures in older adults.\nTitle of the study:")


def tokens_per_second(model: Any, tok: Any, prompts: Sequence[str] = SPEED_PROMPTS, new_tokens: int = 32) -> float:
    """Greedy decoding of exactly `new_tokens` per prompt, one prompt at a time (after one warm-up call)."""
    import torch

    def run(prompt: str) -> None:
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.eos_token_id)

    run(prompts[0])
    t0 = time.perf_counter()
    for p in prompts:
        run(p)
    return len(prompts) * new_tokens / (time.perf_counter() - t0)


def speed(mm: MoErgingModel, tok: Any, rounds: int = 3) -> dict[str, float]:
    """Median tokens/s of the plain base model and of the MoErging model, measured alternately so that load from
    other processes hits both alike (the global scores and routing settings in mm are used as they are)."""
    base, moe = [], []
    for _ in range(rounds):
        base.append(tokens_per_second(mm.unwrap(), tok))
        mm.wrap()
        moe.append(tokens_per_second(mm.model, tok))
    b, m = float(np.median(base)), float(np.median(moe))
    return {"base": b, "moerging": m, "ratio": m / b}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return unit_rows(a) @ unit_rows(b).T


class TaskInstructions:
    """The instruction of each evaluated task, written once (uncached) and then looked up (cached); timed."""

    def __init__(self, writer: Any, encoder: Any) -> None:
        self.writer, self.encoder = writer, encoder
        self.cache: dict[str, tuple[str, np.ndarray]] = {}
        self.uncached_ms: list[float] = []
        self.cached_ms: list[float] = []

    def get(self, task_name: str) -> tuple[str, np.ndarray]:
        from routers.train.moerging import instruction_inputs

        t0 = time.perf_counter()
        hit = self.cache.get(task_name)
        if hit is not None:
            self.cached_ms.append(1000 * (time.perf_counter() - t0))
            return hit
        inputs = instruction_inputs(task_name, split="eval")
        t0 = time.perf_counter()  # the writer and the encoder, not the data loading
        text = self.writer(inputs)
        item = (text, np.asarray(self.encoder.encode([text]))[0])
        self.uncached_ms.append(1000 * (time.perf_counter() - t0))
        self.cache[task_name] = item
        return item


def item_outcomes(mm: MoErgingModel, tok: Any, items: Sequence[tasks.ChoiceItem]) -> tuple[np.ndarray, np.ndarray]:
    """Per item: 1.0 when the best choice per character is the right one, and the right answer's nats per token."""
    right, nats = [], []
    for it in items:
        s = score_choices(mm.model, tok, it.prompt, it.choices)
        right.append(float(s.best == it.answer))
        nats.append(-s.logprob[it.answer] / s.tokens[it.answer])
    return np.array(right), np.array(nats)


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of a − b over the same items and its standard error (the items' spread of the difference)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"diff": float(d.mean()), "se": se, "items": len(d)}


def load_moerging(artifact: str | Path) -> tuple[GateArtifact, MoErgingModel, Any]:
    """The gates artifact, its base model (float32) wrapped with its experts at the default α and k, the tokenizer."""
    from experts.llm.registry_models import resolve_model
    from experts.train.llm_lora import load_causal_lm

    art = load_gates(artifact)
    experts = load_experts(art.expert_paths)
    model, tok = load_causal_lm(resolve_model(experts[0].base_model))
    mm = MoErgingModel(model, experts, art.gates, alpha=float(art.meta.get("alpha", 10.0)),
                       top_k=int(art.meta.get("top_k", 2)))
    return art, mm, tok


def evaluate(artifact: str | Path, limit: int = 60, alphas: Sequence[float] = (3.0, 10.0, 30.0),
             top_ks: Sequence[int] = (1, 2), speed_rounds: int = 3) -> dict[str, Any]:
    from experts.embed.encoder import SentenceEncoder
    from routers.train.glider import load_writer
    from routers.train.moerging import TASK_WRITER_PROMPT

    art, mm, tok = load_moerging(artifact)
    names = mm.experts
    default_alpha, default_k = float(art.meta.get("alpha", 10.0)), int(art.meta.get("top_k", 2))
    encoder = SentenceEncoder(str(art.meta.get("encoder", "registry:all-minilm-l6-v2")))
    expert_emb = np.asarray(encoder.encode([art.instructions[n] for n in names]))
    instructions = TaskInstructions(load_writer(str(art.meta["writer_model"]), TASK_WRITER_PROMPT), encoder)

    task_names = tasks.HELD_IN + tasks.HELD_OUT
    items = {t: tasks.choice_items(t, limit) for t in task_names}
    g = {t: cosine(instructions.get(t)[1][None, :], expert_emb)[0] for t in task_names}
    for t in task_names:
        instructions.get(t)  # the cached path, timed
    mm.set_global_scores(g[task_names[0]])
    tps = speed(mm, tok, speed_rounds)

    right: dict[str, dict[str, np.ndarray]] = {}
    nats: dict[str, dict[str, np.ndarray]] = {}

    def run(system: str, fixed: Sequence[float] | None = None, alpha: float = 0.0, top_k: int = 2) -> None:
        t0 = time.perf_counter()
        mm.fix_weights(fixed)
        mm.set_routing(alpha, top_k)
        right[system], nats[system] = {}, {}
        for t in task_names:
            mm.set_global_scores(g[t])
            right[system][t], nats[system][t] = item_outcomes(mm, tok, items[t])
        accuracy = {t: float(right[system][t].mean()) for t in task_names}
        print(f"{system}: {accuracy} ({time.perf_counter() - t0:.0f} s)", flush=True)

    run("base", fixed=[0.0] * len(names))
    for i, n in enumerate(names):
        run(f"expert:{n}", fixed=[float(j == i) for j in range(len(names))])
    run("local_only", alpha=0.0, top_k=2)
    sweep = sorted({(float(a), int(k)) for a in alphas for k in top_ks} | {(default_alpha, default_k)})
    for a, k in sweep:
        run(f"glider alpha={a:g},k={k}", alpha=a, top_k=k)
    mm.fix_weights(None)
    global_top = {t: names[int(np.argmax(g[t]))] for t in task_names}
    for table in (right, nats):
        table["global_only"] = {t: table[f"expert:{global_top[t]}"][t] for t in task_names}
    per_task = {s: {t: float(outcomes[t].mean()) for t in task_names} for s, outcomes in right.items()}
    default_system = f"glider alpha={default_alpha:g},k={default_k}"

    def joined(table: dict[str, dict[str, np.ndarray]], system: str, members: Sequence[str]) -> np.ndarray:
        return np.concatenate([table[system][t] for t in members])

    groups = {"held_in": tasks.HELD_IN, "held_out": tasks.HELD_OUT}
    report: dict[str, Any] = {}
    for group, members in groups.items():
        mean = {s: float(np.mean([per_task[s][t] for t in members])) for s in per_task}
        best = max(names, key=lambda n: mean[f"expert:{n}"])
        report[group] = {
            "base": mean["base"], "best_single": mean[f"expert:{best}"], "local_only": mean["local_only"],
            "global_only": mean["global_only"], "glider": mean[default_system],
            "oracle": float(np.mean([max(per_task[f"expert:{n}"][t] for n in names) for t in members])),
        }
        report[f"{group}_best_single_expert"] = best
        report[f"{group}_sweep"] = {s.removeprefix("glider "): mean[s] for s in per_task if s.startswith("glider")}
        report[f"{group}_answer_nats"] = {s: float(joined(nats, s, members).mean()) for s in nats}

    report["paired"] = {}
    for metric, table in (("accuracy", right), ("answer_nats", nats)):
        report["paired"][f"held_in {metric}: glider - local_only"] = paired_difference(
            joined(table, default_system, tasks.HELD_IN), joined(table, "local_only", tasks.HELD_IN))
        report["paired"][f"held_out {metric}: glider - base"] = paired_difference(
            joined(table, default_system, tasks.HELD_OUT), joined(table, "base", tasks.HELD_OUT))
    report.update({
        "moerging_speed_ratio": tps["ratio"],
        "tokens_per_second": {"base": tps["base"], "moerging": tps["moerging"]},
        "instruction_latency_ms": {"uncached_mean": float(np.mean(instructions.uncached_ms)),
                                   "cached_mean": float(np.mean(instructions.cached_ms))},
        "glider_default": {"alpha": default_alpha, "top_k": default_k},
        "per_task": per_task, "items_per_task": {t: len(items[t]) for t in task_names},
        "experts": names, "global_scores": {t: [round(float(x), 4) for x in g[t]] for t in task_names},
        "global_top_expert": global_top,
        "task_instructions": {t: instructions.cache[t][0] for t in task_names},
        "expert_instructions": art.instructions, "artifact": str(artifact),
    })
    return report


def evaluate_speed(artifact: str | Path, rounds: int = 3) -> dict[str, Any]:
    """Only the cost side: tokens/s of the MoErging expert (default alpha, top-k) against its base model."""
    _, mm, tok = load_moerging(artifact)
    mm.set_global_scores(np.full(len(mm.experts), 0.3))
    tps = speed(mm, tok, rounds)
    return {"moerging_speed_ratio": tps["ratio"], "tokens_per_second": {"base": tps["base"],
                                                                        "moerging": tps["moerging"]},
            "rounds": rounds, "artifact": str(artifact)}


def print_table(report: dict[str, Any]) -> None:
    systems = list(report["held_in"])
    stats_table("GLIDER (multiple-choice accuracy, %)", ["system", "held-in", "held-out"],
                [[s, 100 * report["held_in"][s], 100 * report["held_out"][s]] for s in systems])
    sweep = report["held_in_sweep"]
    stats_table("GLIDER sweep (%)", ["alpha,k", "held-in", "held-out"],
                [[s, 100 * sweep[s], 100 * report["held_out_sweep"][s]] for s in sweep])
    tasks_ = list(next(iter(report["per_task"].values())))
    stats_table("per task (%)", ["system", *tasks_],
                [[s, *(100 * v[t] for t in tasks_)] for s, v in report["per_task"].items()])
    nats = report["held_in_answer_nats"]
    stats_table("nats per token of the right answer (lower is better)", ["system", "held-in", "held-out"],
                [[s, nats[s], report["held_out_answer_nats"][s]] for s in nats])
    stats_table("paired differences (same items)", ["comparison", "mean", "SE", "items"],
                [[k, v["diff"], v["se"], v["items"]] for k, v in report["paired"].items()])
    lat = report["instruction_latency_ms"]
    print(f"MoErging tokens/s {report['tokens_per_second']['moerging']:.1f} vs base "
          f"{report['tokens_per_second']['base']:.1f}: ratio {report['moerging_speed_ratio']:.2f}; instruction "
          f"uncached {lat['uncached_mean']:.0f} ms, cached {lat['cached_mean']:.3f} ms")


def write_plot(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(report["held_in"])
    x = np.arange(len(systems))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, group in enumerate(("held_in", "held_out")):
        ax.bar(x + (i - 0.5) * 0.38, [100 * report[group][s] for s in systems], 0.38, label=group.replace("_", "-"))
    ax.set_xticks(x, systems, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Token-level GLIDER over LoRA experts (SmolLM2-135M)")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
