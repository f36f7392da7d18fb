"""Train the CoE category router: frozen MiniLM embeddings → logistic regression → temperature → τ → artifact,
then (unless only the prior map is asked for) the category→expert map from measured expert scores.

python -m routers.train.coe_router --config configs/train/coe.yaml --out artifacts/coe-router
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from routers.artifacts import save_artifact
from routers.base import Encoder
from routers.coe import ARTIFACT_KIND, ARTIFACT_VERSION, CoERouter, entropy, softmax
from routers.train.calibration import calibration_summary, fit_temperature
from routers.train.category_map import MEASURED_TAU_RULE, fit_category_map
from routers.train.classifier import fit_logistic
from routers.train.config import SPLITS, CoETrainConfig, Split, load_train_config
from routers.train.datasets import LabelledText, split_texts, training_data_checksums
from routers.train.embed_cache import cached_embeddings
from routers.train.expert_scores import BackendFactory
from routers.train.fallback import TauChoice, choose_tau
from routers.train.report import heldout_metrics, write_report

log = logging.getLogger(__name__)
TAU_RULE = "maximises the dev-split expected score of the routed expert (0/1: expert == map[true category])"


def fit_classifier(x: np.ndarray, y: np.ndarray, cfg: CoETrainConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Multinomial logistic regression with C chosen by stratified k-fold CV; returns W [d, K], b [K], C."""
    (w, b), c = fit_logistic(x, y, len(cfg.categories), cfg.classifier)
    return w, b, c


def expert_scores_01(
    probs: np.ndarray,
    labels: np.ndarray,
    categories: list[str],
    category_map: Mapping[str, str],
    general: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: 1 when the routed (resp. fallback) expert is the map's expert of the true category, else 0."""
    expert_of = [category_map.get(c, general) for c in categories]
    true_expert = np.array([expert_of[k] for k in labels])
    routed = np.array([expert_of[k] for k in probs.argmax(axis=1)])
    return (routed == true_expert).astype(float), (true_expert == general).astype(float)


def _capped(cfg: CoETrainConfig, limit: int | None) -> CoETrainConfig:
    if limit is None:
        return cfg
    caps = {f"{s}_per_subject": min(limit, cfg.limits.cap(s) or limit) for s in SPLITS}
    return cfg.model_copy(update={"limits": cfg.limits.model_copy(update=caps)})


def _embed_splits(
    cfg: CoETrainConfig, encoder: Encoder
) -> tuple[dict[Split, list[LabelledText]], dict[Split, np.ndarray]]:
    texts: dict[Split, list[LabelledText]] = {}
    emb: dict[Split, np.ndarray] = {}
    for split in tqdm(SPLITS, desc="embed splits", unit="split"):
        texts[split] = split_texts(cfg, split)
        emb[split] = cached_embeddings(encoder, cfg.encoder, [x.text for x in texts[split]])
    return texts, emb


def _meta(cfg: CoETrainConfig, temperature: float, tau: TauChoice, dim: int, c: float) -> dict[str, Any]:
    return {
        "categories": cfg.categories,
        "super_categories": cfg.super_categories,
        "temperature": temperature,
        "tau_entropy": tau.tau,
        "tau_rule": TAU_RULE,
        "min_confidence": cfg.fallback.min_confidence,
        "category_map": cfg.category_map,
        "general_expert": cfg.general_expert,
        "expert_params_b": {name: spec.params_b for name, spec in cfg.experts.items()},
        "encoder": cfg.encoder,
        "dim": dim,
        "classifier": {"type": "logistic_regression", "C": c, "class_weight": cfg.classifier.class_weight},
    }


def _with_map_of(cfg: CoETrainConfig, artifact: str | Path) -> tuple[CoETrainConfig, dict[str, Any]]:
    """The config with the category map of `artifact`, and a map_source recording where it came from."""
    from routers.artifacts import load_artifact

    art = load_artifact(artifact, ARTIFACT_KIND, ARTIFACT_VERSION)
    category_map = dict(art.meta.get("category_map", {}))
    cfg = CoETrainConfig.model_validate(cfg.model_dump() | {"category_map": category_map})
    old = art.meta.get("map_source") or {}
    source = {"method": "copied", "from": str(artifact), "from_encoder": art.meta.get("encoder"),
              "from_method": old.get("method", "prior"), "from_budget": old.get("budget"),
              "tau_entropy": float(art.meta["tau_entropy"]), "tau_rule": str(art.meta.get("tau_rule", ""))}
    return cfg, source


def _copied_meta(map_source: dict[str, Any] | None) -> dict[str, Any]:
    if map_source is None:
        return {}
    return {"map_source": map_source, "tau_rule": f"copied from {map_source['from']} ({map_source['tau_rule']})"}


def tau_at(tau: float, entropies: np.ndarray, routed: np.ndarray, fallback: np.ndarray) -> TauChoice:
    """The dev figures of a given τ (rows with H > τ take the fallback score)."""
    falls = np.asarray(entropies) > tau
    score = float(np.where(falls, fallback, routed).mean()) if len(falls) else 0.0
    return TauChoice(tau, score, float(falls.mean()) if len(falls) else 0.0, float(np.mean(routed)))


def _map_source_label(map_fit: dict[str, Any] | None, map_from: str | Path | None) -> str:
    if map_fit:
        return "milp"
    return f"copied from {map_from}" if map_from else "prior (config)"


def train_coe_router(
    config_path: str | Path,
    out_dir: str | Path,
    limit: int | None = None,
    encoder: Encoder | None = None,
    command: str | None = None,
    fit_map: bool = False,
    factory: BackendFactory | None = None,
    encoder_ref: str | None = None,
    map_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train, calibrate, save the artifact and report.json / report.md in `out_dir`; returns the report.

    `fit_map` also scores every expert on the dev split (k-shot MMLU through `factory`, cached) and replaces the
    config's prior category→expert map with the MILP's at `milp.budget`, re-choosing τ on the measured scores.
    `encoder_ref` replaces the config's encoder (experts/embed/encoders.py); `map_from` takes the category→expert
    map of an existing artifact instead of the config's prior (the map is fitted on true categories, so it does
    not depend on the encoder; τ is then chosen by the 0/1 rule).
    """
    t0 = time.perf_counter()
    cfg = _capped(load_train_config(config_path), limit)
    if encoder_ref is not None:
        cfg = cfg.model_copy(update={"encoder": encoder_ref})
    map_source = None
    if map_from is not None:
        cfg, map_source = _with_map_of(cfg, map_from)
    if encoder is None:
        from experts.embed.encoders import make_encoder

        encoder = make_encoder(cfg.encoder, threads=None)  # bulk embedding: every core
    cats = cfg.categories
    texts, emb = _embed_splits(cfg, encoder)
    labels = {s: np.array([cats.index(x.category) for x in texts[s]]) for s in SPLITS}
    t_embed = time.perf_counter()

    w, b, c = fit_classifier(emb["train"], labels["train"], cfg)
    t_fit = time.perf_counter()
    dev_logits = emb["dev"].astype(np.float64) @ w + b
    temperature = fit_temperature(dev_logits, labels["dev"])
    calibration = calibration_summary(dev_logits, labels["dev"], temperature, cfg.calibration.ece_bins)
    dev_probs = softmax(dev_logits, temperature)
    routed, fallback = expert_scores_01(dev_probs, labels["dev"], cats, cfg.category_map, cfg.general_expert)
    tau = choose_tau(entropy(dev_probs), routed, fallback, cfg.fallback.max_fallback_rate)
    if map_source is not None:  # the source's τ was chosen on measured expert scores; the 0/1 rule cannot redo it
        tau = tau_at(float(map_source["tau_entropy"]), entropy(dev_probs), routed, fallback)

    command = command or f"python -m routers.train.coe_router --config {config_path} --out {out_dir}"
    out = save_artifact(
        out_dir,
        ARTIFACT_KIND,
        ARTIFACT_VERSION,
        {"W": w, "b": b},
        _meta(cfg, temperature, tau, int(w.shape[0]), c) | _copied_meta(map_source),
        training_data=training_data_checksums(cfg),
        command=command,
    )
    t_saved = time.perf_counter()
    map_fit = None
    if fit_map:
        fitting = fit_category_map(config_path, out, encoder, factory, limit, command, append_command=False)
        map_fit = asyncio.run(fitting)
    router = CoERouter.from_artifact(out, None)
    held_probs = router.probabilities(emb["heldout"])
    held = heldout_metrics(cfg, texts["heldout"], held_probs, router.decide(held_probs), cats,
                           cfg.calibration.ece_bins, router.category_map)
    t_end = time.perf_counter()
    tau_rule = _copied_meta(map_source).get("tau_rule", TAU_RULE)
    report = {
        "command": command,
        "sizes": {s: len(texts[s]) for s in SPLITS},
        "classifier": {"C": c, "Cs": cfg.classifier.Cs, "cv_folds": cfg.classifier.cv_folds},
        "calibration": calibration,
        "fallback": {**asdict(tau), "rule": tau_rule} if map_fit is None else {
            "tau": map_fit["tau_entropy"],
            "expected_score": map_fit["dev_accuracy"],
            "fallback_rate": map_fit["dev_fallback_rate"],
            "score_without_fallback": map_fit["dev_accuracy_without_fallback"],
            "rule": MEASURED_TAU_RULE,
        },
        "heldout": held,
        "seconds": {
            "embed": round(t_embed - t0, 2),
            "fit": round(t_fit - t_embed, 2),
            "calibrate_save": round(t_saved - t_fit, 2),
            "map_fit_eval": round(t_end - t_saved, 2),
            "total": round(t_end - t0, 2),
        },
        "category_map": {"source": _map_source_label(map_fit, map_from), "map": router.category_map, "fit": map_fit},
    }
    write_report(report, out)
    log.info("trained coe router", extra={"out": str(out), "seconds": round(t_end - t0, 2)})
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the CoE category router")
    parser.add_argument("--config", default="configs/train/coe.yaml")
    parser.add_argument("--out", default="artifacts/coe-router")
    parser.add_argument("--limit", type=int, default=None, help="max examples per subject and split")
    parser.add_argument("--prior-map", action="store_true", help="keep the config's map: no expert scoring")
    parser.add_argument("--encoder", default=None, help="encoder ref (default: the config's)")
    parser.add_argument("--map-from", default=None, help="take the category map of this artifact: no scoring")
    args = parser.parse_args(argv)
    report = train_coe_router(args.config, args.out, args.limit, fit_map=not (args.prior_map or args.map_from),
                              encoder_ref=args.encoder, map_from=args.map_from)
    print(Path(args.out) / "report.md")
    print((Path(args.out) / "report.md").read_text())
    del report


if __name__ == "__main__":
    main()
