"""Reduced A/A check of every detector (the full one is bench/bench_drift_false_alarm.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import binom

from detectors import MULTIVARIATE_DETECTORS, UNIVARIATE_DETECTORS, BaseDetector
from tests.support.detector_cases import every_detector

TRIALS = 60


@pytest.mark.slow
@every_detector(UNIVARIATE_DETECTORS + MULTIVARIATE_DETECTORS)
def test_no_shift_false_alarm_rate_is_near_alpha(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    alarms = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng(10_000 + trial)
        pool = rng.normal(size=(200, 8)) if cls in MULTIVARIATE_DETECTORS else rng.normal(size=200)
        det = cls(n_permutations=299, random_state=trial, **params).fit(pool[:100])
        alarms += det.score(pool[100:]).drift_detected
    # Generous two-sided binomial bound (99.9%) around alpha = 0.05.
    low, high = binom.ppf([0.0005, 0.9995], TRIALS, 0.05)
    assert low <= alarms <= high
