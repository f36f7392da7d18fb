"""Router encoder candidates, one run: retrain the CoE classifier per encoder, then route the held-out prompts one
at a time (as served) for accuracy and latency; and the static→MiniLM cascade, its threshold picked on dev.

Only the training data's dev split chooses anything (the cascade threshold); the held-out split is the test.
`python -m eval.router_encoders --encoder REF ... --cascade-fast model2vec:... --json out.json`
`--cv K` instead cross-validates the candidates over the training split (eval/router_encoder_cv.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench_routing import PROMPTS
from eval.stats import percentile_ms, print_table, write_json
from routers.base import RouteInput
from routers.cascade import CascadeRouter
from routers.coe import CoERouter
from routers.train.config import CoETrainConfig, load_train_config
from routers.train.datasets import LabelledText, split_texts

TRAIN_CONFIG = "configs/train/coe.yaml"
MAP_FROM = "artifacts/coe-router"
DEV_SLACK = 0.005  # the cascade may cost at most half a point of dev accuracy against its full path


def artifact_for(ref: str, root: Path, train_config: str) -> Path:
    """Build the encoder and train its classifier (the committed artifact's map and τ) unless already there."""
    from experts.embed.encoder_build import ensure_built
    from routers.train.coe_router import train_coe_router

    ensure_built(ref)
    out = root / ref.replace(":", "_")
    if not (out / "meta.json").is_file():
        train_coe_router(train_config, out, encoder_ref=ref, map_from=MAP_FROM,
                         command=f"coe train coe-router --encoder {ref} --map-from {MAP_FROM} --out {out}")
    return out


def one_by_one(router: CoERouter, texts: list[str]) -> tuple[np.ndarray, list[float]]:
    """π of each text embedded alone (dynamic int8 quantises per batch, so alone is what serving sees)."""
    assert router.encoder is not None
    router.encoder.encode(["warm up"])
    probs, seconds = [], []
    for text in texts:
        t0 = time.perf_counter()
        p = router.probabilities(router.encoder.encode([text]))
        router.decide(p)
        seconds.append(time.perf_counter() - t0)
        probs.append(p[0])
    return np.array(probs), seconds


def accuracy(cfg: CoETrainConfig, probs: np.ndarray, rows: list[LabelledText]) -> tuple[float, float]:
    """MMLU category and super-category accuracy (the training report's held-out metric)."""
    cats = cfg.categories
    mmlu = np.array([x.source == "mmlu" for x in rows])
    pred = [cats[k] for k in probs.argmax(axis=1)]
    cat_ok = np.array([p == x.category for p, x in zip(pred, rows, strict=True)])
    sup_ok = np.array([cfg.super_category_of(p) == cfg.super_category_of(x.category)
                       for p, x in zip(pred, rows, strict=True)])
    return float(cat_ok[mmlu].mean()), float(sup_ok[mmlu].mean())


def pick_threshold(cfg: CoETrainConfig, fast: np.ndarray, full: np.ndarray, dev: list[LabelledText]) -> float:
    """The lowest static max-π threshold (0.30…1.00 by 0.01) whose dev accuracy is within DEV_SLACK of full's."""
    target = accuracy(cfg, full, dev)[0] - DEV_SLACK
    for t in np.round(np.arange(0.30, 1.0001, 0.01), 2):
        sure = fast.max(axis=1) >= t
        if accuracy(cfg, np.where(sure[:, None], fast, full), dev)[0] >= target:
            return float(t)
    return 1.0


def timed_routes(route: Any, texts: list[str], repeats: int) -> list[float]:
    route([RouteInput("warm up")])
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        route([RouteInput(texts[i % len(texts)])])
        out.append(time.perf_counter() - t0)
    return out


def run(refs: list[str], cascade_fast: str | None, root: Path, json_path: str | None,
        train_config: str = TRAIN_CONFIG, repeats: int = 500) -> dict[str, Any]:
    from experts.embed.encoders import make_encoder

    cfg = load_train_config(train_config)
    dev, held = split_texts(cfg, "dev"), split_texts(cfg, "heldout")
    routers: dict[str, CoERouter] = {}
    probs: dict[str, dict[str, np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    for ref in [*refs, *([cascade_fast] if cascade_fast and cascade_fast not in refs else [])]:
        path = artifact_for(ref, root, train_config)
        router = routers[ref] = CoERouter.from_artifact(path, make_encoder(ref, threads=1))
        hp, hs = one_by_one(router, [x.text for x in held])
        probs[ref] = {"held": hp, "dev": one_by_one(router, [x.text for x in dev])[0]}
        bench = timed_routes(router.route, PROMPTS, repeats)
        cat, sup = accuracy(cfg, hp, held)
        rows.append({"router": ref, "artifact": str(path),
                     "dev_category_accuracy": accuracy(cfg, probs[ref]["dev"], dev)[0],
                     "heldout_category_accuracy": cat,
                     "heldout_super_accuracy": sup, "bench_p50_ms": percentile_ms(bench, 50),
                     "bench_p99_ms": percentile_ms(bench, 99), "heldout_p50_ms": percentile_ms(hs, 50),
                     "heldout_p99_ms": percentile_ms(hs, 99)})
    for full in refs if cascade_fast else []:
        if cascade_fast is None or full == cascade_fast:
            continue
        fast = probs[cascade_fast]
        t = pick_threshold(cfg, fast["dev"], probs[full]["dev"], dev)
        cascade = CascadeRouter(routers[cascade_fast], routers[full], t)
        held_s, sure = [], []
        for x in held:
            t0 = time.perf_counter()
            cascade.route([RouteInput(x.text)])
            held_s.append(time.perf_counter() - t0)
            sure.append(cascade.last_fast_share)
        mixed = np.where((fast["held"].max(axis=1) >= t)[:, None], fast["held"], probs[full]["held"])
        cat, sup = accuracy(cfg, mixed, held)
        bench = timed_routes(cascade.route, PROMPTS, repeats)
        dev_mixed = np.where((fast["dev"].max(axis=1) >= t)[:, None], fast["dev"], probs[full]["dev"])
        rows.append({"router": f"cascade {cascade_fast} → {full} (max π ≥ {t:.2f})", "threshold": t,
                     "dev_category_accuracy": accuracy(cfg, dev_mixed, dev)[0],
                     "heldout_static_share": float(np.mean(sure)), "heldout_category_accuracy": cat,
                     "heldout_super_accuracy": sup, "bench_p50_ms": percentile_ms(bench, 50),
                     "bench_p99_ms": percentile_ms(bench, 99), "heldout_p50_ms": percentile_ms(held_s, 50),
                     "heldout_p99_ms": percentile_ms(held_s, 99)})
    cols = ["router", "dev_category_accuracy", "heldout_category_accuracy", "heldout_super_accuracy",
            "bench_p50_ms", "bench_p99_ms", "heldout_p50_ms", "heldout_p99_ms"]
    print_table("router encoder candidates (held-out prompts one at a time; ms)", cols,
                [[round(r[c], 4) if isinstance(r[c], float) else r[c] for c in cols] for r in rows])
    result = {"repeats": repeats, "n_heldout": len(held), "n_dev": len(dev), "results": rows}
    write_json(json_path, result)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", action="append", required=True, help="candidate encoder ref (repeatable)")
    p.add_argument("--cascade-fast", default=None, help="static encoder ref for the cascade's first stage")
    p.add_argument("--out", default="runs/router-encoders", help="folder for the trained candidate artifacts")
    p.add_argument("--repeats", type=int, default=500)
    p.add_argument("--json", default=None)
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="instead: K-fold CV over the training split only (eval/router_encoder_cv.py)")
    args = p.parse_args(argv)
    if args.cv is not None:
        from eval.router_encoder_cv import run_cv

        run_cv(args.encoder, args.cv, args.json)
        return
    run(args.encoder, args.cascade_fast, Path(args.out), args.json, repeats=args.repeats)


if __name__ == "__main__":
    main()
