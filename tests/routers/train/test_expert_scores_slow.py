"""k-shot scoring with a real small expert (SmolLM2-135M) is deterministic: two runs, identical records."""

from __future__ import annotations

import asyncio

import pytest

from experts.paths import data_dir
from routers.train.config import ExpertSpec
from routers.train.datasets import read_mmlu_csv
from routers.train.expert_scores import cache_for, score_questions

pytestmark = pytest.mark.slow


def test_five_real_questions_score_the_same_twice(tmp_path):
    registry = pytest.importorskip("experts.llm.registry_models")
    csv = data_dir() / "mmlu" / "test" / "abstract_algebra_test.csv"
    if not csv.is_file():
        pytest.skip("MMLU data not found (set COE_DATA_DIR)")
    from experts.llm.transformers_backend import TransformersBackend

    spec = ExpertSpec(params_b=0.135, model="registry:smollm2-135m-instruct")
    questions = read_mmlu_csv(csv, "abstract_algebra")[:5]

    async def run(folder: str) -> dict:
        backend = TransformersBackend("smollm2-135m", registry.resolve_model(spec.model))
        await backend.start()
        try:
            return await score_questions(
                backend, "smollm2-135m", questions, cache_for("smollm2-135m", spec.model, 5, 6000, tmp_path / folder)
            )
        finally:
            await backend.to("disk")

    first, second = asyncio.run(run("a")), asyncio.run(run("b"))
    assert list(first) == [q.id for q in questions]
    assert first == second
    assert all(r.shots == 5 and len(r.ll) == 4 and all(x < 0 for x in r.ll) for r in first.values())
