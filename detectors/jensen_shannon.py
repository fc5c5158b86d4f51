"""Jensen–Shannon divergence detector on reference-quantile histograms."""

from __future__ import annotations

from detectors._typing import Float64Array, Int64Array
from detectors.binned import HistogramDetector
from detectors.histogram import js_divergence


class JensenShannonDetector(HistogramDetector):
    """Jensen–Shannon divergence (bits, 0 to 1) between binned reference and current.

    Bins are the reference's quantiles; threshold and p-value come from permutations of
    the pooled sample for the actual sample sizes.

    Parameters
    ----------
    n_bins : int
        Number of quantile bins.
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
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = JensenShannonDetector(n_bins=10).fit(rng.normal(size=500))
    >>> same = det.score(rng.normal(size=300))
    >>> shifted = det.score(rng.normal(0.5, size=300))
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.042)
    """

    name = "jensen_shannon"

    def _divergence(self, ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
        return js_divergence(ref_counts, cur_counts)
