"""Base class for divergences between histograms on reference-quantile bins."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from detectors._typing import BoolArray, Float64Array, Int64Array, IntpArray
from detectors._validation import Shape
from detectors.base import BaseDetector, check_int
from detectors.errors import InvalidInputError, NotFittedError
from detectors.histogram import (
    MergedCounts,
    bin_counts,
    bin_counts_from_below,
    binned_from_cumcounts,
    reference_bin_edges,
    tie_free_null_counts,
)
from detectors.permutation import (
    PooledGroups,
    null_threshold,
    permutation_p_value,
    permuted_reference_cumcounts,
    row_label_chunks,
    sorted_pooled,
    sorted_pooled_groups,
)
from detectors.result import DriftResult


def binned_null(
    reference: Float64Array,
    current: Float64Array,
    n_bins: int,
    n_permutations: int,
    rng: np.random.Generator,
) -> tuple[Int64Array, Int64Array]:
    """Return ``(n_permutations, n_bins)`` reference and current counts under the null.

    Each permutation relabels the pooled sample and re-derives the bins from the
    permuted reference's own quantiles, exactly as the observed statistic does. Uses the
    closed-form Dirichlet-multinomial draw when the pooled sample has no ties.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = binned_null(rng.normal(size=20), rng.normal(size=10), 4, 5, rng)
    >>> ref.shape, cur.sum(axis=1)
    ((5, 4), array([10, 10, 10, 10, 10]))
    """
    n, m = reference.size, current.size
    values, is_reference, group_ends = sorted_pooled(reference, current)
    if values.size == n + m:
        ref_row, cur = tie_free_null_counts(n, m, n_bins, n_permutations, rng)
        return np.broadcast_to(ref_row, cur.shape).copy(), cur
    cum_total = group_ends.astype(np.int64) + 1
    refs, curs = [], []
    for cum_ref in permuted_reference_cumcounts(is_reference, group_ends, n_permutations, rng):
        ref_counts, cur_counts = binned_from_cumcounts(cum_ref, cum_total, n, n_bins)
        refs.append(ref_counts)
        curs.append(cur_counts)
    # Row 0 of the first chunk is the observed split, not a permutation.
    return np.concatenate(refs)[1:], np.concatenate(curs)[1:]


def grouped_binned_null(
    reference: Float64Array,
    current: Float64Array,
    group_of_row: IntpArray,
    splits: BoolArray,
    n_bins: int,
) -> tuple[Int64Array, Int64Array]:
    """Return the binned reference and current counts of every group split but the first.

    The grouped counterpart of :func:`binned_null`: ``splits`` (``(R + 1, G)``, row 0
    the observed split, see :func:`~detectors.permutation.permuted_group_labels`) moves
    whole groups, so each split has its own reference size; the bins are re-derived from
    each split's own reference quantiles, exactly as the observed statistic does.

    Examples
    --------
    >>> ref, cur = np.array([0.0, 1.0, 2.0, 3.0]), np.array([4.0, 5.0])
    >>> splits = np.array([[True, True, False], [False, True, True]])
    >>> grouped_binned_null(ref, cur, np.array([0, 0, 1, 1, 2, 2]), splits, 2)
    (array([[2, 2]]), array([[2, 0]]))
    """
    _, group_of_sorted, group_ends = sorted_pooled_groups(reference, current, group_of_row)
    total, n_values = group_of_sorted.size, group_ends.size
    cum_total = group_ends.astype(np.int64) + 1
    j = np.arange(1, n_bins, dtype=np.int64)
    refs, curs = [], []
    # Chunks hold at most MAX_CHUNK_ELEMENTS entries, so int32 counts and offsets suffice
    # (and halve the memory traffic of the cumulative sums, the bulk of the work).
    for block in row_label_chunks(splits, group_of_sorted):
        rows = block.shape[0]
        cum = np.cumsum(block, axis=1, dtype=np.int32)
        if n_values != total:  # ties: counts at the end of each distinct value
            cum = cum[:, group_ends]
        sizes = cum[:, -1].astype(np.int64)  # each split's reference size
        ranks = -((-j[None, :] * sizes[:, None]) // n_bins)  # quantile_ranks per split
        # Rows laid end to end, each shifted past every count of the rows before it: one
        # sorted search finds, per split, the first value reaching each rank.
        offsets = np.arange(rows, dtype=np.int64)[:, None] * (total + 1)
        flat = (cum + offsets.astype(cum.dtype)).ravel()
        targets = (ranks + offsets).astype(cum.dtype).ravel()
        edge = np.searchsorted(flat, targets, side="left").reshape(rows, -1)
        edge -= (np.arange(rows) * n_values)[:, None]
        ref_cum = np.take_along_axis(cum, edge, axis=1).astype(np.int64)
        cur_cum = cum_total[edge] - ref_cum
        zeros = np.zeros((rows, 1), dtype=np.int64)
        refs.append(np.diff(np.hstack([zeros, ref_cum, sizes[:, None]]), axis=1))
        curs.append(np.diff(np.hstack([zeros, cur_cum, total - sizes[:, None]]), axis=1))
    return np.concatenate(refs)[1:], np.concatenate(curs)[1:]


class HistogramDetector(BaseDetector):
    """Divergence between reference and current histograms on reference-quantile bins.

    ``fit`` learns ``reference_edges_`` (the reference's ``j / n_bins`` quantiles);
    ``score`` histograms the current sample on them and calibrates the divergence by
    permuting the pooled sample, or whole groups of it when groups are given (bins
    re-derived per permutation). Subclasses define
    :meth:`_divergence` and optionally :meth:`_details`.

    Parameters
    ----------
    n_bins : int
        Number of quantile bins (at least 2).
    alpha, n_permutations, random_state, feature
        See :class:`~detectors.base.BaseDetector`.
    """

    input_shape: ClassVar[Shape] = "univariate"

    def __init__(
        self,
        *,
        n_bins: int = 10,
        alpha: float = 0.05,
        n_permutations: int = 1000,
        random_state: int | None = 0,
        feature: str = "value",
    ) -> None:
        super().__init__(
            alpha=alpha, n_permutations=n_permutations, random_state=random_state, feature=feature
        )
        self.n_bins = check_int(n_bins, "n_bins", 2)

    def _fit(self, reference: Float64Array) -> None:
        self.reference_edges_ = reference_bin_edges(np.sort(reference), self.n_bins)
        self.reference_counts_ = bin_counts(self.reference_edges_, reference, self.n_bins)

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        cur_counts = bin_counts(self.reference_edges_, current, self.n_bins)
        observed = float(self._divergence(self.reference_counts_[None], cur_counts[None])[0])
        null_ref, null_cur = binned_null(
            self.reference_, current, self.n_bins, self.n_permutations, rng
        )
        null = self._divergence(null_ref, null_cur)
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=int(current.size),
            details=self._details(self.reference_counts_, cur_counts),
        )

    def score_merged(self, merged: MergedCounts) -> DriftResult:
        """Test a current sample given only as counts merged chunk by chunk.

        Gives exactly what :meth:`score` gives on the whole current sample when the
        pooled sample has no ties: the observed histogram is the same, and the null is
        the closed-form draw (:func:`~detectors.histogram.tie_free_null_counts`), which
        depends only on the two sizes and ``n_bins``, from the same random stream.

        Parameters
        ----------
        merged : MergedCounts
            Current values counted against this detector's reference
            (:func:`~detectors.histogram.counts_below`), with ``tie_free`` set.

        Raises
        ------
        NotFittedError
            If :meth:`fit` was not called.
        InvalidInputError
            If the counts were taken against another reference, the detector was fitted
            with groups, or the pooled sample is not known to be tie-free (with ties the
            null needs the values: test them, or a sample of them, with :meth:`score`).

        Examples
        --------
        >>> from detectors import JensenShannonDetector
        >>> from detectors.histogram import counts_below
        >>> rng = np.random.default_rng(0)
        >>> ref, cur = rng.normal(size=300), rng.normal(0.5, 1.0, size=200)
        >>> det = JensenShannonDetector(random_state=1).fit(ref)
        >>> merged = counts_below(np.sort(ref), cur[:70]) + counts_below(np.sort(ref), cur[70:])
        >>> a = det.score_merged(MergedCounts(merged, tie_free=True))
        >>> a == det.score(cur), a.drift_detected, a.n_current
        (True, True, 200)
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(reference) first")
        if self.reference_groups_ is not None:
            raise InvalidInputError("merged counts test rows, not groups; use score(groups=...)")
        n, m = self.n_reference_, merged.n_current
        if merged.n_reference != n:
            raise InvalidInputError(
                f"merged counts were taken against {merged.n_reference} reference values, "
                f"but the detector was fitted on {n}"
            )
        if not merged.tie_free or np.unique(self.reference_).size != n:
            raise InvalidInputError(
                "merged counts need a tie-free pooled sample; with ties, score the values"
            )
        if m < self.min_samples:
            raise InvalidInputError(f"current needs at least {self.min_samples} values, got {m}")
        rng = np.random.default_rng(self.random_state)
        cur_counts = bin_counts_from_below(merged.below, self.n_bins)
        observed = float(self._divergence(self.reference_counts_[None], cur_counts[None])[0])
        ref_row, null_cur = tie_free_null_counts(n, m, self.n_bins, self.n_permutations, rng)
        null = self._divergence(np.broadcast_to(ref_row, null_cur.shape).copy(), null_cur)
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=m,
            details=self._details(self.reference_counts_, cur_counts),
        )

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        cur_counts = bin_counts(self.reference_edges_, current, self.n_bins)
        observed = float(self._divergence(self.reference_counts_[None], cur_counts[None])[0])
        null_ref, null_cur = grouped_binned_null(
            self.reference_,
            current,
            groups.pooled(),
            groups.permutations(self.n_permutations, rng),
            self.n_bins,
        )
        null = self._divergence(null_ref, null_cur)
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=int(current.size),
            details=self._details(self.reference_counts_, cur_counts),
            groups=groups,
        )

    @abstractmethod
    def _divergence(self, ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
        """Return one divergence per row of the ``(R, n_bins)`` count arrays."""

    def _details(
        self, ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64]
    ) -> dict[str, float]:
        return {"n_bins": float(self.n_bins)}
