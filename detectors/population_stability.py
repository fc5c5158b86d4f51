"""Population stability index detector on reference-quantile histograms."""

from __future__ import annotations

from detectors._typing import Float64Array, Int64Array
from detectors.base import check_positive_float
from detectors.binned import HistogramDetector
from detectors.histogram import population_stability_index


class PopulationStabilityIndexDetector(HistogramDetector):
    """Population stability index on reference-decile bins, calibrated by permutation.

    Unlike the usual fixed PSI cut-offs (0.1 / 0.25), the threshold is the permutation
    null's ``1 - alpha`` quantile for the actual sample sizes.

    Parameters
    ----------
    epsilon : float
        Floor applied to bin proportions so empty bins stay finite.
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
    >>> det = PopulationStabilityIndexDetector().fit(rng.normal(size=500))
    >>> same = det.score(rng.normal(size=300))
    >>> shifted = det.score(rng.normal(0.5, size=300))
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.238)
    """

    name = "population_stability_index"

    def __init__(
        self,
        *,
        epsilon: float = 1e-4,
        n_bins: int = 10,
        alpha: float = 0.05,
        n_permutations: int = 1000,
        random_state: int | None = 0,
        feature: str = "value",
    ) -> None:
        super().__init__(
            n_bins=n_bins,
            alpha=alpha,
            n_permutations=n_permutations,
            random_state=random_state,
            feature=feature,
        )
        self.epsilon = check_positive_float(epsilon, "epsilon")

    def _divergence(self, ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
        return population_stability_index(ref_counts, cur_counts, self.epsilon)
