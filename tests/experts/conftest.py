"""The small real model the backend tests run on."""

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """A bf16 Hugging Face folder of SmolLM2-135M-Instruct: COE_TEST_SMOLLM2_DIR if set, else the registry."""
    if os.environ.get("COE_TEST_SMOLLM2_DIR"):
        return os.environ["COE_TEST_SMOLLM2_DIR"]
    try:
        registry = importlib.import_module("experts.llm.registry_models")
    except ImportError:
        pytest.skip("no SmolLM2 folder: experts.llm.registry_models is missing, COE_TEST_SMOLLM2_DIR unset")
    return str(registry.resolve_model("registry:smollm2-135m-instruct"))
