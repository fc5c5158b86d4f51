"""Base class for one-dimensional two-sample detectors calibrated by permutation."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from detectors._typing import Float64Array, Int64Array
from detectors._validation import Shape
from detectors.base import BaseDetector
from detectors.permutation import (
    PooledGroups,
    grouped_reference_cumcounts,
    null_threshold,
    permutation_p_value,
    permuted_reference_cumcounts,
    sorted_pooled,
    sorted_pooled_groups,
)
from detectors.result import DriftResult


class UnivariateDetector(BaseDetector):
    """Permutation test of a statistic of the two empirical distributions of one feature.

    Subclasses define :meth:`_statistics`, a function of the cumulative reference counts
    at each distinct pooled value, evaluated for the observed split and for every
    permutation at once. Input is ``(n,)`` or ``(n, 1)``. With groups, whole groups are
    permuted and the sample sizes of each split are passed as ``(R, 1)`` columns.
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

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        values, group_of_sorted, group_ends = sorted_pooled_groups(
            self.reference_, current, groups.pooled()
        )
        cum_total = group_ends.astype(np.int64) + 1
        total = int(cum_total[-1])
        splits = groups.permutations(self.n_permutations, rng)
        chunks = []
        for cum_ref in grouped_reference_cumcounts(splits, group_of_sorted, group_ends):
            n = cum_ref[:, -1:]  # each split's reference size
            chunks.append(self._statistics(values, cum_ref, cum_total, n, total - n))
        stats = np.concatenate(chunks)
        observed, null = float(stats[0]), stats[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=int(current.size),
            groups=groups,
        )

    @abstractmethod
    def _statistics(
        self,
        values: Float64Array,
        cum_ref: Int64Array,
        cum_total: Int64Array,
        n: int | Int64Array,
        m: int | Int64Array,
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
        n, m : int or numpy.ndarray
            Reference and current sample sizes: ints, or ``(R, 1)`` columns when whole
            groups are permuted (the sizes then differ between splits).
        """
