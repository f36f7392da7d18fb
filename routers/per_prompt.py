"""Per-prompt router: predicts every model's outcome on this prompt from its nearest training prompts, then pays
for cost.

For a prompt embedding q, the training prompts are ranked by cosine similarity s_j; the k nearest vote with kernel
weight w_j = exp((s_j − 1) / h) (h = inf: equal votes), and the prediction is shrunk toward a category prior,
    ŷ_m(q) = (Σ_j w_j y_jm + β · prior_m(q)) / (Σ_j w_j + β),   prior(q) = π(q) · C,
where π is the CoE classifier's category distribution and C the per-category mean outcomes: with few or far
neighbours the category's mean speaks. The decision is argmax_m ŷ_m − λ·cost_m (ties to the cheaper model);
sweeping λ from 0 up traces the frontier. Plain numpy over arrays, so it can be tested with a fake encoder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routers.artifacts import check_encoder, load_artifact
from routers.base import Encoder, RouteDecision, RouteInput
from routers.coe import softmax

ARTIFACT_KIND = "per-prompt-router"
ARTIFACT_VERSION = 1
TIE_BREAK = 1e-9  # per unit of cost: equal predictions go to the cheaper model
TOP_SCORES = 3
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class NeighbourParams:
    """How many neighbours vote, how fast their vote fades with distance, and how strongly the prior pulls."""

    k: int
    bandwidth: float  # h; math.inf gives every neighbour the same vote
    shrinkage: float  # β, in units of neighbour weight

    def __post_init__(self) -> None:
        if self.k < 1 or self.bandwidth <= 0 or self.shrinkage < 0:
            raise ValueError(f"need k >= 1, bandwidth > 0, shrinkage >= 0; got {self}")


TEXT_FEATURES = ("log_chars", "log_words", "numbers", "log_digits", "lines", "questions")


def text_features(texts: Sequence[str]) -> np.ndarray:
    """[n, 6] surface features of each prompt: length and how much arithmetic it holds (GSM8K difficulty)."""
    rows = []
    for text in texts:
        numbers = _NUMBER.findall(text)
        rows.append([math.log1p(len(text)), math.log1p(len(text.split())), len(numbers),
                     math.log1p(sum(len(n) for n in numbers)), text.count("\n"), text.count("?")])
    return np.array(rows, dtype=np.float64).reshape(len(texts), len(TEXT_FEATURES))


@dataclass(frozen=True)
class LinearPrior:
    """Ridge regression of every model's outcome on [embedding, standardised text features, 1]."""

    weights: np.ndarray  # [d + F + 1, M]
    feature_mean: np.ndarray  # [F]
    feature_std: np.ndarray  # [F]
    feature_scale: float  # text features are down-weighted against the unit-norm embedding

    def design(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        f = (text_features(texts) - self.feature_mean) / self.feature_std * self.feature_scale
        return np.hstack([np.asarray(embeddings, dtype=np.float64), f, np.ones((len(f), 1))])

    def predict(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return self.design(embeddings, texts) @ self.weights


def neighbour_weights(sims: np.ndarray, bandwidth: float) -> np.ndarray:
    """Kernel weight of each neighbour from its cosine similarity."""
    if math.isinf(bandwidth):
        return np.ones_like(sims)
    return np.exp((sims - 1.0) / bandwidth)


def shrunk_prediction(sims: np.ndarray, outcomes: np.ndarray, prior: np.ndarray, bandwidth: float,
                      shrinkage: float) -> np.ndarray:
    """ŷ for each query: `sims` [n, k] of its neighbours, `outcomes` [n, k, M] theirs, `prior` [n, M]."""
    w = neighbour_weights(sims, bandwidth)
    num = np.einsum("nk,nkm->nm", w, outcomes) + shrinkage * prior
    den = w.sum(axis=1, keepdims=True) + shrinkage
    return num / np.maximum(den, 1e-12)


def top_neighbours(query: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [n, k] and cosine similarities [n, k] of the k most similar keys, most similar first."""
    sims = np.asarray(query, dtype=np.float32) @ np.asarray(keys, dtype=np.float32).T
    k = min(k, keys.shape[0])
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(sims, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1).astype(np.float64)


def choose_models(predicted: np.ndarray, costs: np.ndarray, cost_penalty: float) -> np.ndarray:
    """argmax_m ŷ_m − λ·cost_m per row; equal utilities go to the cheaper model."""
    utility = predicted - (cost_penalty + TIE_BREAK) * costs[None, :]
    return utility.argmax(axis=1)


def cost_penalty_for_budget(predicted: np.ndarray, costs: np.ndarray, budget: float, iterations: int = 60) -> float:
    """The smallest λ whose choices keep the average cost within `budget` (bisection: cost falls as λ grows)."""
    def avg_cost(lam: float) -> float:
        return float(costs[choose_models(predicted, costs, lam)].mean())

    if avg_cost(0.0) <= budget:
        return 0.0
    lo, hi = 0.0, 1.0
    while avg_cost(hi) > budget:
        hi *= 4.0
        if hi > 1e12:  # even λ → inf cannot go below the cheapest model's cost
            return hi
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if avg_cost(mid) <= budget else (mid, hi)
    return hi


class PerPromptRouter:
    """Nearest-neighbour outcome prediction with a category prior; the same object is trained, evaluated and served."""

    def __init__(
        self,
        encoder: Encoder | None,
        keys: np.ndarray,
        outcomes: np.ndarray,
        models: Sequence[str],
        costs: Sequence[float],
        classifier_w: np.ndarray,
        classifier_b: np.ndarray,
        temperature: float,
        category_means: np.ndarray,
        categories: Sequence[str],
        params: NeighbourParams,
        cost_penalty: float = 0.0,
        linear_prior: LinearPrior | None = None,
    ):
        keys = np.asarray(keys, dtype=np.float32)
        outcomes = np.asarray(outcomes, dtype=np.float32)
        if keys.ndim != 2 or outcomes.shape != (keys.shape[0], len(models)) or len(costs) != len(models):
            raise ValueError(f"shapes disagree: keys {keys.shape}, outcomes {outcomes.shape}, {len(models)} models")
        if np.asarray(category_means).shape != (len(categories), len(models)):
            raise ValueError(f"category means must be [{len(categories)}, {len(models)}]")
        if cost_penalty < 0:
            raise ValueError(f"cost_penalty must be >= 0, got {cost_penalty}")
        self.encoder = encoder
        self.keys = keys
        self.outcomes = outcomes
        self.models = list(models)
        self.costs = np.asarray(costs, dtype=np.float64)
        self.classifier_w = np.asarray(classifier_w, dtype=np.float64)
        self.classifier_b = np.asarray(classifier_b, dtype=np.float64).reshape(-1)
        self.temperature = float(temperature)
        self.category_means = np.asarray(category_means, dtype=np.float64)
        self.categories = list(categories)
        self.params = params
        self.cost_penalty = float(cost_penalty)
        self.linear_prior = linear_prior
        self.allowed = np.ones(len(self.models), dtype=bool)
        self.aliases: dict[str, str] = {}

    @classmethod
    def from_artifact(cls, path: str | Path, encoder: Encoder | None) -> PerPromptRouter:
        """Load a verified `per-prompt-router` artifact; an encoder other than the artifact's is refused."""
        art = load_artifact(path, ARTIFACT_KIND, ARTIFACT_VERSION)
        check_encoder(art, encoder)
        meta, arrays = art.meta, art.arrays
        try:
            bandwidth = math.inf if meta["bandwidth"] is None else float(meta["bandwidth"])
            params = NeighbourParams(int(meta["k"]), bandwidth, float(meta["shrinkage"]))
            linear = None
            if meta.get("prior") == "linear":
                linear = LinearPrior(arrays["linear_w"].astype(np.float64), arrays["feature_mean"].astype(np.float64),
                                     arrays["feature_std"].astype(np.float64), float(meta["feature_scale"]))
            return cls(encoder, arrays["keys"], arrays["outcomes"], meta["models"], meta["costs"], arrays["W"],
                       arrays["b"], meta["temperature"], arrays["category_means"], meta["categories"], params,
                       float(meta.get("cost_penalty", 0.0)), linear)
        except KeyError as err:
            raise ValueError(f"{Path(path)}: artifact lacks {err}") from None

    @property
    def dim(self) -> int:
        return int(self.keys.shape[1])

    @property
    def experts(self) -> set[str]:
        """Every expert this router can send a request to, after aliases (for checking the serving config)."""
        return {self.aliases.get(m, m) for m, ok in zip(self.models, self.allowed, strict=True) if ok}

    def stats(self) -> dict[str, Any]:
        """Nothing changes while it serves: no live counters."""
        return {}

    def restrict(self, aliases: Mapping[str, str], available: set[str]) -> list[str]:
        """Serve only models whose (aliased) name is an available expert; returns the models left out."""
        self.aliases = dict(aliases)
        self.allowed = np.array([self.aliases.get(m, m) in available for m in self.models])
        if not self.allowed.any():
            raise ValueError(f"none of the router's models {self.models} is an expert of the config "
                             f"(map them with router.expert_aliases)")
        return [m for m, ok in zip(self.models, self.allowed, strict=True) if not ok]

    def category_probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape [n, {self.dim}], got {emb.shape} (wrong encoder?)")
        return softmax(emb @ self.classifier_w + self.classifier_b, self.temperature)

    def prior(self, embeddings: np.ndarray, texts: Sequence[str] | None) -> np.ndarray:
        """[n, M] what the neighbours are shrunk toward: the linear prior when trained with one, else π · C."""
        if self.linear_prior is None:
            return self.category_probabilities(embeddings) @ self.category_means
        if texts is None or len(texts) != len(embeddings):
            raise ValueError("this per-prompt router's linear prior needs the prompt texts beside their embeddings")
        return self.linear_prior.predict(embeddings, texts)

    def predict(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """ŷ [n, M]: every model's predicted outcome for each embedding row (texts: for the linear prior)."""
        prior = self.prior(embeddings, texts)
        idx, sims = top_neighbours(np.asarray(embeddings), self.keys, self.params.k)
        return shrunk_prediction(sims, self.outcomes[idx], prior, self.params.bandwidth, self.params.shrinkage)

    def choose(self, predicted: np.ndarray, cost_penalty: float | None = None) -> np.ndarray:
        """Index of the chosen model per row (only allowed models)."""
        lam = self.cost_penalty if cost_penalty is None else cost_penalty
        masked = np.where(self.allowed[None, :], predicted, -np.inf)
        return choose_models(masked, self.costs, lam)

    def route(self, inputs: list[RouteInput]) -> list[RouteDecision]:
        if not inputs:
            return []
        if self.encoder is None:
            raise RuntimeError("PerPromptRouter.route needs an encoder; use route_embeddings for offline use")
        texts = [x.text for x in inputs]
        return self.route_embeddings(self.encoder.encode(texts), texts)

    def route_embeddings(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> list[RouteDecision]:
        predicted = self.predict(embeddings, texts)
        probs = self.category_probabilities(embeddings)
        return [self._decision(p, int(m), pi) for p, m, pi in zip(predicted, self.choose(predicted), probs,
                                                                 strict=True)]

    def _decision(self, predicted: np.ndarray, m: int, probs: np.ndarray) -> RouteDecision:
        model = self.models[m]
        expert = self.aliases.get(model, model)
        top = np.argsort(-np.where(self.allowed, predicted, -np.inf), kind="stable")[:TOP_SCORES]
        scores = {self.models[i]: round(float(predicted[i]), 4) for i in top}
        k = int(np.argmax(probs))
        reason = f"per-prompt: predicted {predicted[m]:.3f} for {model} (λ={self.cost_penalty:g})"
        return RouteDecision(expert, self.categories[k], float(probs[k]), reason, scores, {expert: 1.0})
