"""Temperature scaling lowers ECE on an overconfident classifier; τ selection picks the exact best τ."""

from __future__ import annotations

import numpy as np
import pytest

from routers.coe import softmax
from routers.train.calibration import calibration_summary, expected_calibration_error, fit_temperature
from routers.train.fallback import choose_tau


def test_ece_exact_on_two_bins():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin (0.8, 0.9]: acc 0.5 vs conf 0.9; bin (0.5, 0.6]: acc 1.0 vs conf 0.6 → 0.5·0.4 + 0.5·0.4
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.4)


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    labels = rng.integers(0, k, n)
    # True model: the label's logit is +1 over the rest; the classifier reports logits 5x too large.
    true_logits = rng.normal(0, 1, (n, k))
    true_logits[np.arange(n), labels] += 1.0
    noisy = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    logits = 5.0 * true_logits
    t = fit_temperature(logits, noisy)
    assert 4.0 < t < 6.0
    summary = calibration_summary(logits, noisy, t, bins=15)
    assert summary["ece_after"] < summary["ece_before"] / 3
    assert summary["nll_after"] < summary["nll_before"]


def test_choose_tau_exact():
    h = np.array([0.1, 0.5, 0.9, 1.5])
    routed = np.array([1, 1, 0, 0])  # the two most uncertain rows are routed wrongly…
    fallback = np.array([0, 0, 1, 0])  # …and only the 0.9 row is right on the general expert
    best = choose_tau(h, routed, fallback)
    # τ = 0.5: rows 0.9 and 1.5 fall back → scores 1, 1, 1, 0 = 0.75 (τ = 0.9: only 1.5 falls back → 0.5)
    assert (best.tau, best.expected_score, best.fallback_rate, best.score_without_fallback) == (
        0.5,
        0.75,
        0.5,
        0.5,
    )
    capped = choose_tau(h, routed, fallback, max_fallback_rate=0.25)
    assert (capped.tau, capped.expected_score) == (float("inf"), 0.5)  # 1 fallback (rate .25) does not help


def test_choose_tau_ties_keep_fewer_fallbacks():
    h = np.array([0.2, 0.4])
    best = choose_tau(h, np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    assert best.tau == float("inf") and best.fallback_rate == 0.0


def test_choose_tau_min_z_refuses_a_gain_within_noise():
    rng = np.random.default_rng(0)
    h = rng.random(400)
    routed = rng.integers(0, 2, 400).astype(float)
    fallback = rng.integers(0, 2, 400).astype(float)  # same quality: any gain the best τ finds is noise
    assert choose_tau(h, routed, fallback).tau < float("inf")
    assert choose_tau(h, routed, fallback, min_z=2.0).tau == float("inf")
    clear = np.where(h > 0.5, 1.0, routed)  # a real gain above H = 0.5 survives the test
    routed_bad = np.where(h > 0.5, 0.0, routed)
    strict = choose_tau(h, routed_bad, clear, min_z=2.0)
    assert strict.tau < 0.6 and strict.expected_score > routed_bad.mean() + 0.2
