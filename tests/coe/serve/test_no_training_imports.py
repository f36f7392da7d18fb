"""Serving never imports training code: a fresh interpreter imports every serving module and builds what a
gateway, an expert pool and the retriever build in-process (each router type, a MoErging backend, the retrieval
service), then no training module may be loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TRAINING = ("routers.train", "experts.train", "eval")

SERVE_EVERYTHING = """
import json, sys
import coe.cli, coe.commands.serve, coe.serve.app, coe.serve.gateway, coe.serve.runner
from coe.config import load_config
from coe.retrieval import RetrievalService
from coe.serve.backends import build_backend
from coe.serve.routing import RouterHolder

cfg = load_config("configs/default.yaml")
RouterHolder(cfg)
glider = cfg.model_copy(deep=True)
glider.router.type = "glider"
RouterHolder(glider)
glider.router.glider.instruction_mode = "llm"
RouterHolder(glider, pools={"smollm2-135m": object()})   # llm mode: a writer over the pool handle, not called
for expert in cfg.experts:
    build_backend(expert)                                 # constructed, not started: no weights loaded
RetrievalService(cfg.retrieval)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def is_training(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TRAINING)


def test_serving_loads_no_training_module():
    modules = loaded_modules(SERVE_EVERYTHING)
    assert "routers.glider" in modules and "experts.llm.moerging_backend" in modules  # it did build them
    assert [m for m in modules if is_training(m)] == []


def test_the_check_can_fail():
    """The same check sees a training module when one is imported."""
    modules = loaded_modules("import json, sys, coe.serve.routing, routers.train.glider; "
                             "print(json.dumps(sorted(sys.modules)))")
    assert "routers.train.glider" in [m for m in modules if is_training(m)]
