"""K-fold cross-validation of router encoder candidates over the TRAINING prompts only.

`eval.router_encoders` compares encoders on one held-out split; a one-split gap of a few points can be noise. Here
each candidate's classifier is refitted K times, each time on K-1 folds of the training split (the same prompts,
caps and fit `routers.train.coe_router` uses, embedded in batches as that training does) and scored on the fold
left out, each of its prompts embedded alone as served (dynamic int8 quantises per batch). The dev and held-out
splits are never read. Folds are stratified by category and keep both turns of an MT-Bench question together.
`python -m eval.router_encoders --cv 5 --encoder REF ... --json out.json`
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from eval.router_encoders import TRAIN_CONFIG, accuracy
from eval.stats import print_table, write_json
from routers.train.config import CoETrainConfig, load_train_config
from routers.train.datasets import LabelledText, split_texts


def group_of(row: LabelledText) -> str:
    """The unit a fold holds whole: an MMLU question, or an MT-Bench question (both its turns)."""
    return row.id.rsplit("/", 1)[0] if row.source == "mt_bench" else row.id


def fold_ids(rows: list[LabelledText], k: int, seed: int = 0) -> np.ndarray:
    """Fold index (0…k-1) of each row: groups of each category shuffled by `seed`, then dealt round-robin.

    The deal continues across categories, so fold sizes differ by at most one group per category."""
    if k < 2:
        raise ValueError(f"cross-validation needs k >= 2 folds, got {k}")
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row.category, set()).add(group_of(row))
    rng = np.random.default_rng(seed)
    fold_of_group: dict[str, int] = {}
    dealt = 0
    for category in sorted(groups):
        members = sorted(groups[category])
        for j in rng.permutation(len(members)):
            fold_of_group.setdefault(members[j], dealt % k)
            dealt += 1
    return np.array([fold_of_group[group_of(r)] for r in rows], dtype=int)


def embed_alone(encoder: Any, ref: str, texts: list[str]) -> np.ndarray:
    """Each text embedded by itself, as the served router sees it (cached apart from the batched embeddings)."""
    from tqdm import tqdm

    from experts.paths import cache_dir
    from routers.train.embed_cache import texts_key

    path = cache_dir() / "embeddings-alone" / f"{texts_key(ref, texts)}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    encoder.encode(["warm up"])
    emb = np.concatenate([np.asarray(encoder.encode([t]), dtype=np.float32)
                          for t in tqdm(texts, desc=f"{ref} alone", unit="prompt", mininterval=5)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb, allow_pickle=False)
    tmp.replace(path)
    return emb


def cv_encoder(cfg: CoETrainConfig, ref: str, rows: list[LabelledText], folds: np.ndarray) -> dict[str, Any]:
    """Per fold: fit on the other folds' batched embeddings, score the fold's alone-embedded MMLU prompts."""
    from experts.embed.encoder_build import ensure_built
    from experts.embed.encoders import make_encoder
    from routers.train.coe_router import fit_classifier
    from routers.train.embed_cache import cached_embeddings

    ensure_built(ref)
    texts = [x.text for x in rows]
    t0 = time.perf_counter()
    batched = cached_embeddings(make_encoder(ref, threads=None), ref, texts, progress=f"{ref} batched")
    alone = embed_alone(make_encoder(ref, threads=1), ref, texts)
    t_embed = time.perf_counter() - t0
    cats = cfg.categories
    y = np.array([cats.index(x.category) for x in rows])
    per_fold = []
    for f in range(int(folds.max()) + 1):
        train, test = folds != f, folds == f
        w, b, c = fit_classifier(batched[train], y[train], cfg)
        test_rows = [x for x, t in zip(rows, test, strict=True) if t]
        cat, sup = accuracy(cfg, alone[test] @ w + b, test_rows)
        per_fold.append({"fold": f, "n_train": int(train.sum()),
                         "n_test_mmlu": sum(x.source == "mmlu" for x in test_rows), "C": c,
                         "category_accuracy": cat, "super_accuracy": sup})
        print(f"  {ref} fold {f}: category {cat:.4f} super {sup:.4f} (C={c:g})", flush=True)
    cat_acc = np.array([p["category_accuracy"] for p in per_fold])
    sup_acc = np.array([p["super_accuracy"] for p in per_fold])
    return {"encoder": ref, "category_mean": float(cat_acc.mean()), "category_sd": float(cat_acc.std(ddof=1)),
            "super_mean": float(sup_acc.mean()), "super_sd": float(sup_acc.std(ddof=1)),
            "embed_seconds": round(t_embed, 1), "folds": per_fold}


def paired_gaps(results: list[dict[str, Any]], baseline: str) -> dict[str, dict[str, Any]]:
    """Per encoder: category accuracy minus the baseline's on the same folds (mean, sd, folds where it is ahead)."""
    base = next((r for r in results if r["encoder"] == baseline), None)
    if base is None:
        return {}
    b = np.array([p["category_accuracy"] for p in base["folds"]])
    out = {}
    for r in results:
        d = np.array([p["category_accuracy"] for p in r["folds"]]) - b
        out[r["encoder"]] = {"mean": float(d.mean()), "sd": float(d.std(ddof=1)), "folds_ahead": int((d > 0).sum())}
    return out


def _gap_text(gap: dict[str, Any], k: int) -> str:
    return f"{gap['mean']:+.4f} ± {gap['sd']:.4f} (ahead {gap['folds_ahead']}/{k})"


def run_cv(refs: list[str], k: int, json_path: str | None, train_config: str = TRAIN_CONFIG,
           seed: int = 0) -> dict[str, Any]:
    cfg = load_train_config(train_config)
    rows = split_texts(cfg, "train")
    folds = fold_ids(rows, k, seed)
    results = [cv_encoder(cfg, ref, rows, folds) for ref in refs]
    gaps = paired_gaps(results, refs[0])
    cols = ["encoder", "category mean ± sd", "super mean ± sd", f"Δ category vs {refs[0]}", "per-fold category"]
    print_table(f"router encoders, {k}-fold CV over the training split (MMLU prompts embedded alone)", cols, [
        [r["encoder"], f"{r['category_mean']:.4f} ± {r['category_sd']:.4f}",
         f"{r['super_mean']:.4f} ± {r['super_sd']:.4f}", _gap_text(gaps[r["encoder"]], k),
         " ".join(f"{p['category_accuracy']:.3f}" for p in r["folds"])] for r in results])
    result = {"k": k, "seed": seed, "split": "train", "n_rows": len(rows),
              "n_mmlu": sum(x.source == "mmlu" for x in rows),
              "fold_sizes": np.bincount(folds, minlength=k).tolist(), "baseline": refs[0],
              "paired_gap_vs_baseline": gaps, "results": results}
    write_json(json_path, result)
    return result
