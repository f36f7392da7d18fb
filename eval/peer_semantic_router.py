"""`coe bench routing --peer semantic-router`: the semantic-router package routing the same held-out prompts.

Its routes are the router categories, each with the training prompts of that category as utterances (the texts
our classifier is trained on), embedded by the same encoder object as ours; it scores a prompt by the mean
similarity of its top-5 utterance hits per route (its defaults) and always answers (no confidence threshold).
Both routers are timed one prompt at a time over the held-out prompts, through their public call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from coe.config import CoeConfig
from eval.stats import percentile_ms, print_table, write_json
from routers.base import RouteInput
from routers.train.config import load_train_config
from routers.train.datasets import LabelledText, split_texts

TRAIN_CONFIG = "configs/train/coe.yaml"


def dense_encoder(inner: Any) -> Any:
    """Our encoder as a semantic-router DenseEncoder (it takes lists of texts and returns lists of floats)."""
    from pydantic import PrivateAttr
    from semantic_router.encoders import DenseEncoder

    class CoeEncoder(DenseEncoder):
        type: str = "coe"
        _inner: Any = PrivateAttr()

        def __call__(self, docs: list[Any]) -> list[list[float]]:
            return np.asarray(self._inner.encode([str(d) for d in docs])).tolist()

    enc = CoeEncoder(name=str(getattr(inner, "ref", "coe")))
    enc._inner = inner
    return enc


def build_peer(encoder: Any, train: list[LabelledText], categories: list[str]) -> Any:
    """An IndexedRouter with one route per category that has training prompts."""
    from semantic_router import IndexedRouter, Route

    by_category: dict[str, list[str]] = {c: [] for c in categories}
    for x in train:
        by_category[x.category].append(x.text)
    routes = [Route(name=c, utterances=u) for c, u in by_category.items() if u]
    return IndexedRouter(encoder=dense_encoder(encoder), routes=routes)


def timed(fn: Callable[[str], str | None], texts: list[str]) -> tuple[list[str | None], list[float]]:
    """Each text through `fn` alone (batch 1), after one warm-up call; returns predictions and seconds."""
    fn(texts[0])
    preds, seconds = [], []
    for text in texts:
        t0 = time.perf_counter()
        preds.append(fn(text))
        seconds.append(time.perf_counter() - t0)
    return preds, seconds


def accuracy(preds: list[str | None], held: list[LabelledText], source: str | None = None) -> float:
    rows = [(p, x) for p, x in zip(preds, held, strict=True) if source is None or x.source == source]
    return float(np.mean([p == x.category for p, x in rows])) if rows else float("nan")


def summary(name: str, preds: list[str | None], seconds: list[float], held: list[LabelledText]) -> dict[str, Any]:
    return {"router": name, "route_p50_ms": percentile_ms(seconds, 50), "route_p99_ms": percentile_ms(seconds, 99),
            "mmlu_category_accuracy": accuracy(preds, held, "mmlu"),
            "mt_bench_category_accuracy": accuracy(preds, held, "mt_bench"),
            "all_category_accuracy": accuracy(preds, held), "n": len(held)}


def run_peer(cfg: CoeConfig, json_path: str | None = None, train_config: str | Path = TRAIN_CONFIG) -> dict[str, Any]:
    """Ours (the configured router and encoder) and semantic-router's, on the same held-out prompts, one run."""
    from coe.serve.routing import build_router

    tcfg = load_train_config(train_config)
    train, held = split_texts(tcfg, "train"), split_texts(tcfg, "heldout")
    ours = build_router(cfg)
    if not hasattr(ours, "categories"):
        raise ValueError(f"router.type {cfg.router.type!r} has no categories to compare; use type coe")
    ours.min_confidence = None  # category accuracy of the classifier, as in the training report
    ours.tau_entropy = float("inf")
    peer = build_peer(ours.encoder, train, tcfg.categories)

    def ours_category(text: str) -> str | None:
        return ours.route([RouteInput(text=text)])[0].category

    def peer_category(text: str) -> str | None:
        return peer(text).name

    texts = [x.text for x in held]
    rows = [summary(f"coe ({cfg.router.encoder})", *timed(ours_category, texts), held),
            summary(f"semantic-router ({cfg.router.encoder})", *timed(peer_category, texts), held)]
    cols = ["router", "route_p50_ms", "route_p99_ms", "mmlu_category_accuracy", "mt_bench_category_accuracy", "n"]
    print_table("routing the held-out prompts: coe vs semantic-router", cols, [[r[c] for c in cols] for r in rows])
    out = {"encoder": cfg.router.encoder, "artifact": str(cfg.router.artifact), "train_prompts": len(train),
           "peer": {"package": "semantic-router", "version": _version(), "top_k": 5, "aggregation": "mean"},
           "results": rows}
    write_json(json_path, out)
    return out


def _version() -> str:
    from importlib.metadata import version

    return version("semantic-router")
