"""Domain classifier: AUC bookkeeping, the closed-form ridge folds and the exact null."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from detectors import DomainClassifierDetector
from detectors.domain_classifier import auc_columns, cross_validated_predictions, ridge_folds
from monitor.errors import InvalidInputError


def test_auc_columns_match_roc_auc_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(60, 4)), 1)  # rounding makes ties
    labels = np.stack([rng.permutation(np.arange(60) < 25) for _ in range(4)], axis=1)
    expected = [roc_auc_score(labels[:, j], scores[:, j]) for j in range(4)]
    np.testing.assert_allclose(auc_columns(scores, labels), expected)


@pytest.mark.parametrize("n_features", [3, 40])  # primal and dual forms
def test_held_out_predictions_are_sklearn_ridge_refitted_per_fold(n_features: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, n_features))
    fold_of = np.arange(30) % 3
    targets = rng.normal(size=(30, 2))
    got = cross_validated_predictions(x, ridge_folds(x, fold_of, 3, 0.5), targets)
    for k in range(3):
        train, test = fold_of != k, fold_of == k
        for j in range(2):
            model = Ridge(alpha=train.sum() / 0.5, fit_intercept=False)
            model.fit(x[train], targets[train, j])
            np.testing.assert_allclose(got[test, j], model.predict(x[test]), atol=1e-10)


def test_separable_windows_give_auc_near_one() -> None:
    rng = np.random.default_rng(1)
    det = DomainClassifierDetector(n_permutations=199).fit(rng.normal(size=(100, 3)))
    result = det.score(rng.normal(size=(100, 3)) + 4.0)
    assert result.statistic > 0.97
    assert result.drift_detected
    assert result.details["null_mean_auc"] == pytest.approx(0.5, abs=0.03)


def test_too_few_samples_for_the_folds_is_named() -> None:
    det = DomainClassifierDetector(n_splits=5).fit(np.random.default_rng(2).normal(size=(20, 2)))
    with pytest.raises(InvalidInputError, match="n_splits=5"):
        det.score(np.zeros((3, 2)) + 1.0)


def test_windows_resampled_with_replacement_from_one_pool_keep_the_rate() -> None:
    # Duplicated rows on both sides (n > pool) are where a classifier can memorise; the
    # null refits the folds per permutation, so it memorises equally under the null.
    pool = np.random.default_rng(3).normal(size=(40, 30))
    alarms = 0
    trials = 100
    for trial in range(trials):
        rng = np.random.default_rng(100 + trial)
        ref, cur = pool[rng.integers(0, 40, 120)], pool[rng.integers(0, 40, 120)]
        det = DomainClassifierDetector(n_permutations=99, random_state=trial, C=100.0)
        alarms += det.fit(ref).score(cur).drift_detected
    assert alarms <= 13  # binomial(100, 0.05) exceeds 13 with probability < 0.001
