"""Contrastive training of one query-side LoRA adapter against frozen base-encoder document embeddings.

Only queries pass through the model (documents come from the corpus index), which keeps a step cheap enough
for a small CPU. Loss: InfoNCE over in-batch positives plus one mined hard negative per query, temperature 0.05;
a document relevant to another query of the batch is masked out rather than pushed away. With
`pseudo_queries`, a share of the batches are spans cut from the domain's own documents (pseudo_queries.py), so
an adapter sees thousands of in-domain queries instead of fitting the few dozen judged ones.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from experts.embed.adapters import LoraSpec
from experts.embed.beir import BeirSplit
from experts.embed.index import CorpusIndex
from experts.embed.query_encoder import ExpertQueryEncoder
from experts.train.pseudo_queries import pseudo_queries

log = logging.getLogger(__name__)


class LoraTrainConfig(BaseModel):
    """Training settings of a query adapter; steps = epochs × pairs / batch, clipped to [min_steps, max_steps]."""

    model_config = ConfigDict(extra="forbid")

    lora: LoraSpec = Field(default_factory=lambda: LoraSpec())
    temperature: float = Field(default=0.05, gt=0)
    batch_size: int = Field(default=32, ge=2)
    epochs: float = Field(default=2.0, gt=0)
    min_steps: int = Field(default=30, ge=1)
    max_steps: int = Field(default=120, ge=1)
    lr: float = Field(default=5e-4, gt=0)
    hard_negatives: bool = True
    hard_negative_depth: int = Field(default=30, ge=2, description="sample the hard negative from the base top-k")
    pseudo_queries: int = Field(default=0, ge=0, description="pseudo-queries cut from each dataset's documents")
    pseudo_share: float = Field(default=0.5, ge=0, lt=1, description="share of batches drawn from pseudo-queries")
    seed: int = 0


@dataclass(frozen=True)
class TrainingSet:
    """One dataset's training split with its corpus index (document vectors from the base encoder)."""

    split: BeirSplit
    index: CorpusIndex


@dataclass
class _Pool:
    """Per dataset: queries, their relevant rows and hard-negative candidates, document vectors (torch)."""

    texts: list[str]
    positives: list[list[int]]
    negatives: list[list[int]]
    docs: Any  # torch.Tensor [n_docs, d]


def _pool(texts: list[str], positive_ids: list[list[str]], index: CorpusIndex, encoder: ExpertQueryEncoder,
          cfg: LoraTrainConfig):  # noqa: ANN202
    import torch

    row_of = {d: i for i, d in enumerate(index.doc_ids)}
    positives = [[row_of[d] for d in ids] for ids in positive_ids]
    keep = [i for i, p in enumerate(positives) if p]
    texts, positives = [texts[i] for i in keep], [positives[i] for i in keep]
    negatives: list[list[int]] = [[] for _ in texts]
    if cfg.hard_negatives and texts:
        _, ids = index.search(encoder.encode(texts), cfg.hard_negative_depth)
        negatives = [[row_of[d] for d in row if row_of[d] not in set(pos)] for row, pos in zip(ids, positives,
                                                                                                strict=True)]
    return _Pool(texts, positives, negatives, torch.from_numpy(index.embeddings()))


def _judged_pool(ts: TrainingSet, encoder: ExpertQueryEncoder, cfg: LoraTrainConfig) -> _Pool:
    qids = sorted(ts.split.qrels)
    positive_ids = [[d for d, s in ts.split.qrels[q].items() if s > 0] for q in qids]
    return _pool([ts.split.queries[q] for q in qids], positive_ids, ts.index, encoder, cfg)


def _pseudo_pool(ts: TrainingSet, encoder: ExpertQueryEncoder, cfg: LoraTrainConfig) -> _Pool:
    made = pseudo_queries(ts.split.corpus, cfg.pseudo_queries, seed=cfg.seed)
    return _pool([p.text for p in made], [[p.doc_id] for p in made], ts.index, encoder, cfg)


def _batch(pool: _Pool, size: int, rng: random.Random):  # noqa: ANN202
    """Distinct queries, one random positive each, plus one hard negative each (when mined)."""
    import torch

    picks = rng.sample(range(len(pool.texts)), min(size, len(pool.texts)))
    pos_rows = [rng.choice(pool.positives[i]) for i in picks]
    neg_rows = [rng.choice(pool.negatives[i]) for i in picks if pool.negatives[i]]
    cand = pos_rows + neg_rows
    # mask a candidate that is relevant to the query but is not its target (a false negative)
    mask = torch.zeros(len(picks), len(cand), dtype=torch.bool)
    for qi, i in enumerate(picks):
        rel = set(pool.positives[i])
        for ci, row in enumerate(cand):
            if ci != qi and row in rel:
                mask[qi, ci] = True
    return [pool.texts[i] for i in picks], pool.docs[cand], mask


def _forward(encoder: ExpertQueryEncoder, texts: list[str]):  # noqa: ANN202
    return encoder.model(encoder.features(texts))["sentence_embedding"]


def train_query_adapter(
    expert: str, sets: list[TrainingSet], encoder: ExpertQueryEncoder, cfg: LoraTrainConfig,
    progress: bool = False,
) -> dict[str, object]:
    """Add and train adapter `expert` on `encoder`; returns a training report (steps, loss, seconds)."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    start = time.perf_counter()
    pools = [_judged_pool(ts, encoder, cfg) for ts in sets]
    pseudo = [p for p in (_pseudo_pool(ts, encoder, cfg) for ts in sets) if p.texts] if cfg.pseudo_queries else []
    share = cfg.pseudo_share if pseudo else 0.0
    pairs = sum(len(p) for pool in pools for p in pool.positives)
    # the judged queries still get `epochs` passes when a share of the batches are pseudo-queries
    steps = int(np.clip(round(cfg.epochs * pairs / cfg.batch_size / (1 - share)), cfg.min_steps, cfg.max_steps))
    encoder.add_adapter(expert, cfg.lora)
    losses: list[float] = []
    with encoder.lock:
        encoder.activate(expert, trainable=True)
        params = [p for p in encoder.model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / 10) * (1 - s / steps))
        encoder.model.train()
        weights = [len(p.texts) for p in pools]
        pseudo_weights = [len(p.texts) for p in pseudo]
        for _ in tqdm(range(steps), desc=f"adapter {expert}", disable=not progress):
            # batches stay within one dataset and one kind of query (judged or pseudo)
            if pseudo and rng.random() < share:
                pool = rng.choices(pseudo, weights=pseudo_weights)[0]
            else:
                pool = rng.choices(pools, weights=weights)[0]
            texts, docs, mask = _batch(pool, cfg.batch_size, rng)
            q = _forward(encoder, texts)
            logits = (q @ docs.T / cfg.temperature).masked_fill(mask, float("-inf"))
            loss = F.cross_entropy(logits, torch.arange(len(texts)))
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
            losses.append(loss.item())
        encoder.model.eval()
    seconds = time.perf_counter() - start
    log.info("trained adapter", extra={"expert": expert, "steps": steps, "seconds": round(seconds, 1)})
    return {"expert": expert, "steps": steps, "pairs": pairs, "queries": sum(len(p.texts) for p in pools),
            "pseudo_queries": sum(len(p.texts) for p in pseudo),
            "loss_first": round(float(np.mean(losses[:5])), 4), "loss_last": round(float(np.mean(losses[-5:])), 4),
            "train_seconds": round(seconds, 1)}
