"""Recorded outcomes of real LLMs, per prompt: the one reader of the `prompts.jsonl / scores.csv / models.json` layout.

This is how routers learn without running the models (RouteLLM, RouterBench and RouterDC replay such tables), and
how a user brings their own logs: one folder per benchmark, one row per prompt, one column per model.
Every problem is reported as an `OutcomeTableError` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROMPTS_FILE = "prompts.jsonl"
SCORES_FILE = "scores.csv"
MODELS_FILE = "models.json"
DEFAULT_CLOSED_COST_B = 200.0  # a guess for a frontier closed model; RouteLLM's metrics only use the strong share


class OutcomeTableError(ValueError):
    """An outcome table that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ModelInfo:
    """One model (column) of the table with the cost a router pays for it (billions of active parameters)."""

    name: str
    cost: float
    active_params_b: float | None
    kind: str = "open"


@dataclass(frozen=True)
class OutcomeTable:
    """Prompts × models → outcome; rows keep the order of prompts.jsonl."""

    name: str
    ids: list[str]
    prompts: list[str]
    categories: list[str]
    scores: np.ndarray  # [n_prompts, n_models] float64
    models: list[ModelInfo]
    contaminated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    sources: list[str] = field(default_factory=list)  # the folder of each row (several tables concatenated)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def costs(self) -> np.ndarray:
        return np.array([m.cost for m in self.models], dtype=np.float64)

    def subset(self, rows: Sequence[int] | np.ndarray) -> OutcomeTable:
        """The same table restricted to `rows` (in that order)."""
        idx = np.asarray(rows, dtype=np.int64)
        return OutcomeTable(
            self.name, [self.ids[i] for i in idx], [self.prompts[i] for i in idx],
            [self.categories[i] for i in idx], self.scores[idx], self.models, self.contaminated[idx],
            [self.sources[i] for i in idx],
        )


def _read_models(path: Path, costs: Mapping[str, float]) -> list[ModelInfo]:
    if not path.is_file():
        raise OutcomeTableError(f"{path}: missing (a JSON list of {{name, active_params_b, total_params_b, kind}})")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OutcomeTableError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, list) or not data:
        raise OutcomeTableError(f"{path}: must be a non-empty JSON list of models")
    models = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise OutcomeTableError(f"{path}: entry {i} needs a non-empty string 'name'")
        active = entry.get("active_params_b")
        if active is not None and (not isinstance(active, int | float) or active <= 0):
            raise OutcomeTableError(f"{path}: {entry['name']}: active_params_b must be a positive number or null")
        cost = costs.get(entry["name"], DEFAULT_CLOSED_COST_B if active is None else float(active))
        models.append(ModelInfo(entry["name"], float(cost), None if active is None else float(active),
                                str(entry.get("kind", "open"))))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise OutcomeTableError(f"{path}: model names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    return models


def _read_prompts(path: Path) -> list[dict]:
    if not path.is_file():
        raise OutcomeTableError(f"{path}: missing (one JSON object per line: id, prompt, category)")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise OutcomeTableError(f"{path}:{line_no}: not valid JSON ({err})") from None
            for key in ("id", "prompt", "category"):
                if not isinstance(row, dict) or not isinstance(row.get(key), str) or not row[key]:
                    raise OutcomeTableError(f"{path}:{line_no}: needs a non-empty string {key!r}")
            rows.append(row)
    if not rows:
        raise OutcomeTableError(f"{path}: empty table (no prompts)")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise OutcomeTableError(f"{path}: prompt ids repeat, e.g. {next(i for i in ids if ids.count(i) > 1)!r}")
    return rows


def _parse_score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OutcomeTableError(f"{where}: score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise OutcomeTableError(f"{where}: score {text!r} is not a finite number")
    return value


def _read_scores(path: Path, models: list[ModelInfo]) -> dict[str, list[float]]:
    if not path.is_file():
        raise OutcomeTableError(f"{path}: missing (CSV: id, then one column per model)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0] != "id":
            raise OutcomeTableError(f"{path}: the first column must be 'id', got {header[:1] if header else 'nothing'}")
        columns = header[1:]
        known = {m.name for m in models}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise OutcomeTableError(f"{path}: columns name models missing from {MODELS_FILE}: {unknown}")
        missing = [m.name for m in models if m.name not in columns]
        if missing:
            raise OutcomeTableError(f"{path}: no column for models listed in {MODELS_FILE}: {missing}")
        order = [columns.index(m.name) for m in models]
        out: dict[str, list[float]] = {}
        for line_no, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                raise OutcomeTableError(f"{path}:{line_no}: {len(row)} fields, the header has {len(header)}")
            values = [_parse_score(row[1 + j], f"{path}:{line_no} column {columns[j]!r}") for j in order]
            out[row[0]] = values
    if not out:
        raise OutcomeTableError(f"{path}: empty table (no score rows)")
    return out


def read_outcome_table(folder: str | Path, costs: Mapping[str, float] | None = None) -> OutcomeTable:
    """Read and validate one folder; `costs` overrides a model's cost (required in effect for closed models)."""
    root = Path(folder)
    if not root.is_dir():
        raise OutcomeTableError(f"{root}: outcome table folder not found")
    models = _read_models(root / MODELS_FILE, costs or {})
    unknown = sorted(set(costs or {}) - {m.name for m in models})
    if unknown:
        raise OutcomeTableError(f"{root / MODELS_FILE}: a cost is given for unknown models {unknown}")
    prompts = _read_prompts(root / PROMPTS_FILE)
    scores = _read_scores(root / SCORES_FILE, models)
    missing = [r["id"] for r in prompts if r["id"] not in scores]
    if missing:
        raise OutcomeTableError(f"{root / SCORES_FILE}: no scores for {len(missing)} prompts, e.g. {missing[0]!r}")
    return OutcomeTable(
        name=root.name,
        ids=[r["id"] for r in prompts],
        prompts=[r["prompt"] for r in prompts],
        categories=[r["category"] for r in prompts],
        scores=np.array([scores[r["id"]] for r in prompts], dtype=np.float64),
        models=models,
        contaminated=np.array([bool(r.get("contaminated", False)) for r in prompts], dtype=bool),
        sources=[str(root)] * len(prompts),
    )


def table_names(folders: Sequence[str | Path]) -> list[str]:
    """Folders under COE_DATA_DIR/outcomes by their bare name (what --outcomes accepts), others as given: what
    artifacts record, so they do not carry one machine's paths."""
    from experts.paths import data_dir

    root = (data_dir() / "outcomes").resolve()
    return [str(Path(f).resolve().relative_to(root)) if Path(f).resolve().is_relative_to(root) else str(f)
            for f in folders]


def concat_tables(tables: Sequence[OutcomeTable]) -> OutcomeTable:
    """Several folders over the same models (RouterDC's five tasks) as one table; rows remember their folder."""
    if not tables:
        raise OutcomeTableError("no outcome tables given")
    first = tables[0]
    for table in tables[1:]:
        if table.model_names != first.model_names:
            raise OutcomeTableError(
                f"{table.sources[0]}: models {table.model_names} differ from {first.sources[0]}: {first.model_names}")
    if len(tables) == 1:
        return first
    return OutcomeTable(
        "+".join(t.name for t in tables),
        [i for t in tables for i in t.ids],
        [p for t in tables for p in t.prompts],
        [c for t in tables for c in t.categories],
        np.concatenate([t.scores for t in tables]),
        first.models,
        np.concatenate([t.contaminated for t in tables]),
        [s for t in tables for s in t.sources],
    )


def read_outcome_tables(folders: Sequence[str | Path], costs: Mapping[str, float] | None = None) -> OutcomeTable:
    """`read_outcome_table` for each folder, concatenated."""
    return concat_tables([read_outcome_table(f, costs) for f in folders])


def parse_costs(items: Sequence[str]) -> dict[str, float]:
    """`NAME=COST` pairs from the command line (cost in billions of active parameters, or any unit used alike)."""
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"--cost expects NAME=COST, got {item!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--cost {item!r}: {value!r} is not a number") from None
        if out[name] <= 0:
            raise ValueError(f"--cost {item!r}: the cost must be positive")
    return out


def write_outcome_table(table: OutcomeTable, folder: str | Path) -> Path:
    """Write a table in the layout `read_outcome_table` reads (a slice for a quick run, a user's converted logs)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    with (root / PROMPTS_FILE).open("w", encoding="utf-8") as fh:
        for i, (pid, prompt, cat) in enumerate(zip(table.ids, table.prompts, table.categories, strict=True)):
            row = {"id": pid, "prompt": prompt, "category": cat, "contaminated": bool(table.contaminated[i])}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (root / SCORES_FILE).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *table.model_names])
        for pid, row in zip(table.ids, table.scores, strict=True):
            writer.writerow([pid, *[repr(float(v)) for v in row]])
    models = [{"name": m.name, "active_params_b": m.active_params_b, "kind": m.kind} for m in table.models]
    (root / MODELS_FILE).write_text(json.dumps(models, indent=1) + "\n")
    return root
