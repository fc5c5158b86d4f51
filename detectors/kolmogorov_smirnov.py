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

    Ten objects on each of 90 images, their sizes sharing the image's zoom: object by
    object an A/A split is flagged; with the image as the group it is not.

    >>> rng = np.random.default_rng(3)
    >>> image = np.repeat(np.arange(90), 10)
    >>> sizes = rng.lognormal(size=90)[image] * rng.lognormal(0, 0.3, size=900)
    >>> det = KolmogorovSmirnovDetector(n_permutations=200)
    >>> objects = det.fit(sizes[:600]).score(sizes[600:])
    >>> images = det.fit(sizes[:600], groups=image[:600]).score(sizes[600:], groups=image[600:])
    >>> objects.drift_detected, images.drift_detected, images.n_current, images.n_current_groups
    (True, False, 300, 30)
    """

    name = "kolmogorov_smirnov"

    def _statistics(
        self,
        values: Float64Array,
        cum_ref: Int64Array,
        cum_total: Int64Array,
        n: int | Int64Array,
        m: int | Int64Array,
    ) -> Float64Array:
        gap = cum_ref / n - (cum_total - cum_ref) / m
        result: Float64Array = np.abs(gap).max(axis=1)
        return result
