"""Smoothed Kullback–Leibler divergence detector on reference-quantile histograms."""

from __future__ import annotations

from typing import Literal

from detectors._typing import Float64Array, Int64Array
from detectors.base import check_positive_float
from detectors.binned import HistogramDetector
from detectors.errors import InvalidInputError
from detectors.histogram import kl_divergence

KLDirection = Literal["current_reference", "reference_current", "symmetric"]
KL_DIRECTIONS: tuple[KLDirection, ...] = ("current_reference", "reference_current", "symmetric")


class KullbackLeiblerDetector(HistogramDetector):
    """Kullback–Leibler divergence (nats) between binned reference and current.

    Both histograms get ``smoothing`` pseudo-counts per bin so empty bins stay finite.
    ``details`` always reports both directions, ``kl_current_reference`` =
    KL(current ‖ reference) and ``kl_reference_current``; the tested statistic is the one
    chosen by ``direction`` (``symmetric`` is their sum). Calibrated by permutations of the
    pooled sample.

    Parameters
    ----------
    direction : {"current_reference", "reference_current", "symmetric"}
        Which divergence is the statistic.
    smoothing : float
        Pseudo-count added to every bin (0.5 is the Krichevsky–Trofimov estimator).
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
    >>> det = KullbackLeiblerDetector().fit(rng.normal(size=500))
    >>> same = det.score(rng.normal(size=300))
    >>> shifted = det.score(rng.normal(0.5, size=300))
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.229)
    >>> sorted(shifted.details)
    ['kl_current_reference', 'kl_reference_current', 'n_bins']
    """

    name = "kullback_leibler"

    def __init__(
        self,
        *,
        direction: KLDirection = "symmetric",
        smoothing: float = 0.5,
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
        if direction not in KL_DIRECTIONS:
            raise InvalidInputError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")
        self.direction: KLDirection = direction
        self.smoothing = check_positive_float(smoothing, "smoothing")

    def _divergence(self, ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
        if self.direction == "current_reference":
            return kl_divergence(cur_counts, ref_counts, self.smoothing)
        if self.direction == "reference_current":
            return kl_divergence(ref_counts, cur_counts, self.smoothing)
        forward = kl_divergence(cur_counts, ref_counts, self.smoothing)
        result: Float64Array = forward + kl_divergence(ref_counts, cur_counts, self.smoothing)
        return result

    def _details(self, ref_counts: Int64Array, cur_counts: Int64Array) -> dict[str, float]:
        return {
            "n_bins": float(self.n_bins),
            "kl_current_reference": float(kl_divergence(cur_counts, ref_counts, self.smoothing)[0]),
            "kl_reference_current": float(kl_divergence(ref_counts, cur_counts, self.smoothing)[0]),
        }
