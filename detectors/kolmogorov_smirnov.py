"""Two-sample Kolmogorov–Smirnov detector."""

from __future__ import annotations

import numpy as np

from detectors._typing import Float64Array, Int64Array
from detectors.univariate import UnivariateDetector


class KolmogorovSmirnovDetector(UnivariateDetector):
    """Largest gap between the reference and current empirical CDFs.

    The threshold and p-value come from permutations of the pooled sample, so they are
    exact for the actual sample sizes and stay valid with ties (discrete features).

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
    >>> det = KolmogorovSmirnovDetector(n_permutations=200).fit(rng.normal(size=300))
    >>> same = det.score(rng.normal(size=200))
    >>> shifted = det.score(rng.normal(0.5, size=200))
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.245)
    """

    name = "kolmogorov_smirnov"

    def _statistics(
        self, values: Float64Array, cum_ref: Int64Array, cum_total: Int64Array, n: int, m: int
    ) -> Float64Array:
        gap = cum_ref / n - (cum_total - cum_ref) / m
        result: Float64Array = np.abs(gap).max(axis=1)
        return result
