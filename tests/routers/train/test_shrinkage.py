"""Empirical-Bayes shrinkage of category accuracies: exact values on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from routers.train.shrinkage import shrink_scores


def test_spread_within_sampling_noise_is_shrunk_to_the_mean():
    # p = 0.375, sample variance 0.03125 < binomial noise 0.375 * 0.625 / 4 = 0.0586: no category signal.
    shrunk, (signal,) = shrink_scores(np.array([[0.5], [0.25]]), np.array([4, 4]))
    np.testing.assert_allclose(shrunk[:, 0], [0.375, 0.375])
    assert signal.mean == 0.375 and signal.between_sd == 0.0
    assert signal.sampling_sd == pytest.approx((0.375 * 0.625 / 4) ** 0.5)


def test_real_spread_is_kept_in_proportion_to_its_evidence():
    # p = 0.5; sample variance 0.32, noise 0.0025 -> tau^2 = 0.3175, weight 0.3175 / 0.32 = 0.9921875.
    shrunk, (signal,) = shrink_scores(np.array([[0.9], [0.1]]), np.array([100, 100]))
    np.testing.assert_allclose(shrunk[:, 0], [0.5 + 0.4 * 0.9921875, 0.5 - 0.4 * 0.9921875])
    assert signal.between_sd == pytest.approx(0.3175**0.5)


def test_each_expert_is_shrunk_on_its_own_and_unscored_categories_stay_nan():
    scores = np.array([[1.0, 0.5], [1.0, 0.25], [np.nan, np.nan]])
    shrunk, signals = shrink_scores(scores, np.array([4, 4, 0]))
    np.testing.assert_allclose(shrunk[:2, 0], [1.0, 1.0])  # no spread, no noise: unchanged
    np.testing.assert_allclose(shrunk[:2, 1], [0.375, 0.375])
    assert np.isnan(shrunk[2]).all() and [s.mean for s in signals] == [1.0, 0.375]


def test_one_category_is_refused():
    with pytest.raises(ValueError, match="at least two categories"):
        shrink_scores(np.array([[0.5], [np.nan]]), np.array([4, 0]))
