"""Wasserstein-1 (earth mover's) distance detector."""

from __future__ import annotations

import numpy as np

from detectors._typing import Float64Array, Int64Array
from detectors.univariate import UnivariateDetector


class WassersteinDetector(UnivariateDetector):
    """Area between the reference and current empirical CDFs, in the feature's units.

    Calibrated by permutations of the pooled sample for the actual sample sizes.

    Parameters
    ----------
    alpha : float
        False-alarm rate.
    n_permutations : int
        Permutations used for calibration.
    random_state : int or None
        Seed.
    feature : str
        Feature name copied into results.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = WassersteinDetector(n_permutations=200).fit(rng.normal(size=300))
    >>> same = det.score(rng.normal(size=200))
    >>> shifted = det.score(rng.normal(0.5, size=200))
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.539)
    """

    name = "wasserstein"

    def _statistics(
        self,
        values: Float64Array,
        cum_ref: Int64Array,
        cum_total: Int64Array,
        n: int | Int64Array,
        m: int | Int64Array,
    ) -> Float64Array:
        gap = np.abs(cum_ref[:, :-1] / n - (cum_total[:-1] - cum_ref[:, :-1]) / m)
        result: Float64Array = gap @ np.diff(values)
        return result
