"""Base class for one-dimensional two-sample detectors calibrated by permutation."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from detectors._typing import Float64Array, Int64Array
from detectors._validation import Shape
from detectors.base import BaseDetector
from detectors.permutation import (
    null_threshold,
    permutation_p_value,
    permuted_reference_cumcounts,
    sorted_pooled,
)
from detectors.result import DriftResult


class UnivariateDetector(BaseDetector):
    """Permutation test of a statistic of the two empirical distributions of one feature.

    Subclasses define :meth:`_statistics`, a function of the cumulative reference counts
    at each distinct pooled value, evaluated for the observed split and for every
    permutation at once. Input is ``(n,)`` or ``(n, 1)``.
    """

    input_shape: ClassVar[Shape] = "univariate"

    def _fit(self, reference: Float64Array) -> None:
        self.reference_sorted_ = np.sort(reference)

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        values, is_reference, group_ends = sorted_pooled(self.reference_, current)
        cum_total = group_ends.astype(np.int64) + 1
        n, m = self.n_reference_, int(current.size)
        chunks = [
            self._statistics(values, cum_ref, cum_total, n, m)
            for cum_ref in permuted_reference_cumcounts(
                is_reference, group_ends, self.n_permutations, rng
            )
        ]
        stats = np.concatenate(chunks)
        observed, null = float(stats[0]), stats[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=m,
        )

    @abstractmethod
    def _statistics(
        self, values: Float64Array, cum_ref: Int64Array, cum_total: Int64Array, n: int, m: int
    ) -> Float64Array:
        """Return one statistic per row of ``cum_ref``.

        Parameters
        ----------
        values : numpy.ndarray
            Distinct pooled values, ascending, shape ``(U,)``.
        cum_ref : numpy.ndarray
            ``(R, U)`` reference samples ``<=`` each value, one row per split.
        cum_total : numpy.ndarray
            ``(U,)`` pooled samples ``<=`` each value.
        n, m : int
            Reference and current sample sizes.
        """
