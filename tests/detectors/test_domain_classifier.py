"""Domain classifier: AUC bookkeeping and its guard on tiny samples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detectors import DomainClassifierDetector
from detectors.domain_classifier import fold_auc_null
from monitor.errors import InvalidInputError


def test_observed_fold_auc_is_the_roc_auc_and_the_null_centres_on_a_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    labels = rng.random(200) < 0.4
    aucs = fold_auc_null(scores, labels, 2000, rng)
    assert aucs[0] == pytest.approx(roc_auc_score(labels, scores))
    assert aucs[1:].mean() == pytest.approx(0.5, abs=0.01)


def test_separable_windows_give_auc_near_one() -> None:
    rng = np.random.default_rng(1)
    det = DomainClassifierDetector(n_permutations=199).fit(rng.normal(size=(100, 3)))
    result = det.score(rng.normal(size=(100, 3)) + 4.0)
    assert result.statistic > 0.97
    assert result.drift_detected


def test_too_few_samples_for_the_folds_is_named() -> None:
    det = DomainClassifierDetector(n_splits=5).fit(np.random.default_rng(2).normal(size=(20, 2)))
    with pytest.raises(InvalidInputError, match="n_splits=5"):
        det.score(np.zeros((3, 2)) + 1.0)
