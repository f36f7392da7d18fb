"""Temperature scaling (Guo et al. 2017) and expected calibration error for the category classifier."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from routers.coe import softmax


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T > 0 that minimises validation NLL (searched over log T, so the bounds are multiplicative)."""
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(lo, hi), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width confidence bins: Σ_b |B|/n · |accuracy(B) − confidence(B)|."""
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    # Bin edges (lo, hi]; confidence is always > 0, so the first bin starts just above 0.
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float, bins: int) -> dict[str, float]:
    """ECE and NLL before (T = 1) and after temperature scaling."""
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(softmax(logits, 1.0), labels, bins),
        "ece_after": expected_calibration_error(softmax(logits, temperature), labels, bins),
        "nll_before": nll(logits, labels, 1.0),
        "nll_after": nll(logits, labels, temperature),
    }
