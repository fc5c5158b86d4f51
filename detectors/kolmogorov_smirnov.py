"""Two-sample Kolmogorov–Smirnov detector."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.univariate import UnivariateDetector

FloatVec = npt.NDArray[np.float64]
IntMat = npt.NDArray[np.int64]


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
        self, values: FloatVec, cum_ref: IntMat, cum_total: IntMat, n: int, m: int
    ) -> FloatVec:
        gap = cum_ref / n - (cum_total - cum_ref) / m
        result: FloatVec = np.abs(gap).max(axis=1)
        return result
