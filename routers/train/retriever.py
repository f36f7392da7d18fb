"""RouterRetriever training: query-side LoRA experts per dataset, a multi-task baseline, and pilot embeddings.

Pilots: every training query goes to the expert (or the base encoder) with the best nDCG@10 for it; each group's
base-encoder embeddings are clustered with KMeans and the centroids become that expert's pilots. Centroids of a
group depend only on that group, so adding an expert adds pilots and touches no other expert's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from experts.artifact_store import sha256_file
from experts.embed.adapters import save_adapter
from experts.embed.beir import BeirSplit, load_split
from experts.embed.index import CorpusIndex, load_or_build_index
from experts.embed.metrics import per_query, run_from_ranking
from experts.embed.query_encoder import ExpertQueryEncoder, encoder_id
from experts.paths import REPO_ROOT, cache_dir, data_dir
from experts.train.embed_lora import LoraTrainConfig, TrainingSet, train_query_adapter
from routers.retriever import PilotRouter

log = logging.getLogger(__name__)

BASE = "base"
DEFAULT_ENCODER = "registry:all-minilm-l6-v2"
# Expert domains: every dataset with training queries. Test-only sets (medline, cacm, adi) stay unseen.
EXPERT_DATASETS = {"scifact": "beir/scifact", "cranfield": "ir/cranfield", "cisi": "ir/cisi", "npl": "ir/npl"}
EVAL_DATASETS = {**EXPERT_DATASETS, "medline": "ir/medline", "cacm": "ir/cacm", "adi": "ir/adi"}
ARTIFACTS = REPO_ROOT / "artifacts" / "retriever"
# The recipe of the committed adapters: judged queries plus pseudo-queries cut from the domain's documents
# (half the batches); without the pseudo-queries the adapters fit their 38-809 judged queries and barely move.
EXPERT_RECIPE = {"max_steps": 200, "pseudo_queries": 2000}
MULTITASK_RECIPE = {"max_steps": 300, "pseudo_queries": 2000}


def dataset_folder(dataset: str | Path) -> Path:
    """A known dataset name (scifact, npl, …) or any folder in BEIR layout."""
    if str(dataset) in EVAL_DATASETS:
        return data_dir() / EVAL_DATASETS[str(dataset)]
    path = Path(dataset)  # a relative path that is not here resolves against COE_DATA_DIR, as in the config
    return path if path.is_absolute() or path.exists() else data_dir() / path


def dataset_index(name: str, folder: Path, encoder: ExpertQueryEncoder, index_root: Path | None = None,
                  show_progress: bool = False) -> CorpusIndex:
    return load_or_build_index(name, folder, encoder, encoder_id(encoder.ref), index_root or cache_dir() / "indexes",
                               show_progress=show_progress)


def training_checksums(splits: list[BeirSplit]) -> dict[str, str]:
    """sha256 of every file a model was trained from, keyed by path relative to the data folder."""
    out = {}
    for s in splits:
        for rel in ("corpus.jsonl", "queries.jsonl", f"qrels/{s.split}.tsv"):
            path = s.folder / rel
            key = path.relative_to(data_dir()).as_posix() if path.is_relative_to(data_dir()) else str(path)
            out[key] = sha256_file(path)
    return out


def train_adapter(expert: str, datasets: list[str | Path], out: Path, cfg: LoraTrainConfig | None = None,
                  encoder_ref: str = DEFAULT_ENCODER, command: str = "") -> dict[str, object]:
    """Train one query adapter on the train qrels of `datasets` and save it as a checksummed artifact."""
    cfg = cfg or LoraTrainConfig()
    encoder = ExpertQueryEncoder(encoder_ref)
    sets, splits = [], []
    for ds in datasets:
        folder = dataset_folder(ds)
        split = load_split(folder, "train", name=Path(str(ds)).name)
        sets.append(TrainingSet(split, dataset_index(split.name, folder, encoder)))
        splits.append(split)
    report = train_query_adapter(expert, sets, encoder, cfg, progress=True)
    meta = {"expert": expert, "base_encoder": encoder_ref, "datasets": [s.name for s in splits],
            "train_config": cfg.model_dump(), "report": report}
    save_adapter(out, encoder.adapter_weights(expert), cfg.lora, meta,
                 training_data=training_checksums(splits), command=command)
    return report


def train_retriever_expert(dataset: str | Path, out: Path | None = None, cfg: LoraTrainConfig | None = None,
                           command: str = "") -> dict[str, object]:
    """The domain expert of one dataset (its train qrels and pseudo-queries), saved under artifacts/retriever/<name>."""
    name = Path(str(dataset)).name
    cfg = cfg or LoraTrainConfig.model_validate(EXPERT_RECIPE)
    return train_adapter(name, [dataset], out or ARTIFACTS / name, cfg, command=command)


def train_retriever_multitask(datasets: list[str] | None = None, out: Path | None = None,
                              cfg: LoraTrainConfig | None = None, command: str = "") -> dict[str, object]:
    """The multi-task baseline: one adapter trained on every expert dataset together."""
    names = datasets or list(EXPERT_DATASETS)
    cfg = cfg or LoraTrainConfig.model_validate(MULTITASK_RECIPE)
    return train_adapter("multitask", list(names), out or ARTIFACTS / "multitask", cfg, command=command)


def expert_ndcg(encoder: ExpertQueryEncoder, split: BeirSplit, index: CorpusIndex,
                experts: list[str]) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10 of every expert (and `base`) on a split: {expert: {query id: ndcg}}."""
    qids = sorted(split.queries)
    texts = [split.queries[q] for q in qids]
    out = {}
    for name in experts:
        scores, ids = index.search(encoder.encode(texts, None if name == BASE else name), 10)
        out[name] = per_query(run_from_ranking(qids, ids, scores), split.qrels)
    return out


def assign_best(ndcg: dict[str, dict[str, float]], preference: list[str]) -> dict[str, str]:
    """Query id → the expert with the best nDCG@10; ties go to the earliest name in `preference`."""
    qids = next(iter(ndcg.values())).keys()
    order = preference + [e for e in ndcg if e not in preference]
    return {q: max(order, key=lambda e: (ndcg[e][q], -order.index(e))) for q in qids}


def pilots_from_groups(groups: dict[str, np.ndarray], k: int, seed: int = 0) -> dict[str, np.ndarray]:
    """KMeans centroids (L2-normalised) per group; at most one centroid per member, groups left empty drop."""
    from sklearn.cluster import KMeans

    pilots = {}
    for name, emb in groups.items():
        if len(emb) == 0:
            continue
        n = min(k, len(emb))
        centroids = KMeans(n_clusters=n, n_init=10, random_state=seed).fit(emb).cluster_centers_
        pilots[name] = (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).astype(np.float32)
    return pilots


def train_retriever_router(experts: dict[str, Path] | None = None, datasets: dict[str, str | Path] | None = None,
                           out: Path | None = None, k: int = 8, include_base: bool = True,
                           encoder_ref: str = DEFAULT_ENCODER, command: str = "") -> dict[str, object]:
    """Pilot embeddings from the train splits of `datasets` for the adapters in `experts`; saved as an artifact."""
    start = time.perf_counter()
    experts = experts or {name: ARTIFACTS / name for name in EXPERT_DATASETS}
    datasets = datasets or dict(EXPERT_DATASETS)
    encoder = ExpertQueryEncoder(encoder_ref)
    for name, path in experts.items():
        encoder.load_expert(name, path)
    candidates = ([BASE] if include_base else []) + list(experts)
    groups: dict[str, list[np.ndarray]] = {c: [] for c in candidates}
    counts: dict[str, dict[str, int]] = {}
    splits = []
    for ds, ref in datasets.items():
        folder = dataset_folder(ref)
        split = load_split(folder, "train", name=ds)
        splits.append(split)
        ndcg = expert_ndcg(encoder, split, dataset_index(ds, folder, encoder), candidates)
        best = assign_best(ndcg, [ds, BASE] if ds in experts else [BASE])
        qids = sorted(split.queries)
        base_emb = encoder.encode([split.queries[q] for q in qids])
        for row, q in enumerate(qids):
            groups[best[q]].append(base_emb[row])
        counts[ds] = {c: sum(1 for q in qids if best[q] == c) for c in candidates}
    pilots = pilots_from_groups({c: np.array(v) for c, v in groups.items()}, k)
    router = PilotRouter(pilots)
    meta = {"encoder": encoder_ref, "k": k, "include_base": include_base, "assignment": counts,
            "adapters": {n: sha256_file(Path(p) / "weights.safetensors") for n, p in experts.items()},
            "train_seconds": round(time.perf_counter() - start, 1)}
    router.save(out or ARTIFACTS / "router", meta, training_data=training_checksums(splits), command=command)
    return meta
