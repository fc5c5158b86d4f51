"""Permutation calibration: p-values, thresholds and vectorised label permutations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from detectors._typing import BoolArray, Float64Array, Int64Array, IntpArray

MAX_CHUNK_ELEMENTS = 4_000_000
"""Permutation rows are generated in chunks of at most this many label entries."""


def permutation_p_value(observed: float, null: npt.ArrayLike) -> float:
    """Return the permutation p-value ``(k + 1) / (n + 1)``.

    ``k`` counts null statistics at least as large as ``observed`` and ``n`` is the
    number of null statistics, so the p-value is never 0 and the test is exact.

    Examples
    --------
    >>> permutation_p_value(3.0, [1.0, 2.0, 3.0, 4.0])
    0.6
    """
    arr = np.asarray(null, dtype=np.float64)
    # A relative tolerance keeps statistics equal up to rounding counted as ties.
    tol = 1e-12 * max(1.0, abs(observed))
    k = int(np.count_nonzero(arr >= observed - tol))
    return (k + 1) / (arr.size + 1)


def null_threshold(null: npt.ArrayLike, alpha: float) -> float:
    """Return the ``1 - alpha`` quantile of the null statistics (``higher`` method).

    Examples
    --------
    >>> null_threshold(np.arange(100.0), 0.05)
    95.0
    """
    return float(np.quantile(np.asarray(null, dtype=np.float64), 1.0 - alpha, method="higher"))


def sorted_pooled(
    reference: Float64Array, current: Float64Array
) -> tuple[Float64Array, npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """Sort the pooled 1-D sample.

    Returns
    -------
    values : numpy.ndarray
        The distinct pooled values, ascending (length ``U``).
    is_reference : numpy.ndarray
        For each pooled sample in sorted order, whether it came from the reference.
    group_ends : numpy.ndarray
        Index (into the sorted pooled sample) of the last sample of each distinct value.

    Examples
    --------
    >>> v, is_ref, ends = sorted_pooled(np.array([2.0, 1.0]), np.array([2.0]))
    >>> v, is_ref.astype(int), ends
    (array([1., 2.]), array([1, 1, 0]), array([0, 2]))
    """
    pooled = np.concatenate([reference, current])
    order = np.argsort(pooled, kind="stable")
    sorted_values = pooled[order]
    is_reference = order < reference.size
    new_group = np.empty(sorted_values.size, dtype=bool)
    new_group[:-1] = sorted_values[1:] != sorted_values[:-1]
    new_group[-1] = True
    group_ends = np.flatnonzero(new_group)
    return sorted_values[group_ends], is_reference, group_ends


def sorted_pooled_groups(
    reference: Float64Array, current: Float64Array, group_of_row: IntpArray
) -> tuple[Float64Array, IntpArray, IntpArray]:
    """Sort the pooled 1-D sample and carry each sample's pooled group along.

    Returns
    -------
    values : numpy.ndarray
        The distinct pooled values, ascending (as :func:`sorted_pooled`).
    group_of_sorted : numpy.ndarray
        The pooled group of each sample in sorted order.
    group_ends : numpy.ndarray
        Index of the last sample of each distinct value (as :func:`sorted_pooled`).

    Examples
    --------
    >>> sorted_pooled_groups(np.array([2.0, 1.0]), np.array([2.0]), np.array([0, 1, 2]))
    (array([1., 2.]), array([1, 0, 2]), array([0, 2]))
    """
    pooled = np.concatenate([reference, current])
    order = np.argsort(pooled, kind="stable")
    sorted_values = pooled[order]
    new_group = np.empty(sorted_values.size, dtype=bool)
    new_group[:-1] = sorted_values[1:] != sorted_values[:-1]
    new_group[-1] = True
    group_ends = np.flatnonzero(new_group)
    return sorted_values[group_ends], group_of_row[order], group_ends


LabelT = TypeVar("LabelT", bound=np.generic)


def permuted_labels(
    labels: npt.NDArray[LabelT],
    n_permutations: int,
    rng: np.random.Generator,
    max_elements: int = MAX_CHUNK_ELEMENTS,
) -> Iterator[npt.NDArray[LabelT]]:
    """Yield ``(rows, N)`` blocks of uniformly random permutations of ``labels``.

    Row 0 of the first block is ``labels`` itself (the observed split); in total
    ``n_permutations + 1`` rows are yielded, at most ``max_elements`` entries a block.

    Examples
    --------
    >>> blocks = list(permuted_labels(np.array([1, 1, 0]), 4, np.random.default_rng(0), 6))
    >>> [b.shape for b in blocks], blocks[0][0], int(sum(b.sum() for b in blocks))
    ([(2, 3), (2, 3), (1, 3)], array([1, 1, 0]), 10)
    """
    n_total = labels.size
    rows_per_chunk = max(1, max_elements // max(n_total, 1))
    remaining = n_permutations + 1
    first = True
    while remaining > 0:
        rows = min(rows_per_chunk, remaining)
        block = rng.permuted(np.broadcast_to(labels, (rows, n_total)), axis=1)
        if first:
            block[0] = labels
            first = False
        yield block
        remaining -= rows


def permuted_reference_cumcounts(
    is_reference: npt.NDArray[np.bool_],
    group_ends: npt.NDArray[np.intp],
    n_permutations: int,
    rng: np.random.Generator,
) -> Iterator[Int64Array]:
    """Yield chunks of cumulative reference counts per distinct value.

    Row 0 of the first chunk is the observed split; every other row relabels the pooled
    sample uniformly at random (keeping the reference size). Entry ``[r, u]`` is how many
    reference samples of split ``r`` are ``<=`` the ``u``-th distinct value. In total
    ``n_permutations + 1`` rows are yielded.

    Examples
    --------
    >>> _, is_ref, ends = sorted_pooled(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    >>> chunks = list(permuted_reference_cumcounts(is_ref, ends, 3, np.random.default_rng(0)))
    >>> chunks[0][0], chunks[0].shape
    (array([1, 2, 2, 2]), (4, 4))
    """
    for block in permuted_labels(is_reference.astype(np.int64), n_permutations, rng):
        yield np.cumsum(block, axis=1)[:, group_ends]


def permuted_group_labels(
    group_is_reference: npt.NDArray[np.bool_], n_permutations: int, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """Return ``(n_permutations + 1, G)`` reference marks of whole groups (cluster permutation).

    Row 0 is the observed split; every other row picks uniformly at random which of the
    ``G`` pooled groups form the reference, keeping the number of reference groups. All
    rows of a group move together, so the test is exact when groups (images) are
    exchangeable, however correlated the rows (objects) inside a group are.

    Examples
    --------
    >>> rows = permuted_group_labels(np.array([True, True, False]), 3, np.random.default_rng(0))
    >>> rows[0].astype(int), rows.sum(axis=1)
    (array([1, 1, 0]), array([2, 2, 2, 2]))
    """
    labels = np.asarray(group_is_reference, dtype=bool)
    rows = rng.permuted(np.broadcast_to(labels, (n_permutations + 1, labels.size)), axis=1)
    rows[0] = labels
    return rows


def row_label_chunks(
    group_labels: npt.NDArray[np.bool_],
    group_of_row: npt.NDArray[np.intp],
    max_elements: int = MAX_CHUNK_ELEMENTS,
) -> Iterator[npt.NDArray[np.bool_]]:
    """Yield ``(rows, N)`` reference marks of every row, from the marks of its group.

    Parameters
    ----------
    group_labels : numpy.ndarray
        ``(R, G)`` reference marks per split and group (:func:`permuted_group_labels`).
    group_of_row : numpy.ndarray
        ``(N,)`` pooled group code of each row (in the order the caller needs).
    max_elements : int
        Entries per yielded block, at most (one split per block at least).

    Examples
    --------
    >>> labels = np.array([[True, False], [False, True]])
    >>> [b.astype(int).tolist() for b in row_label_chunks(labels, np.array([0, 0, 1]), 3)]
    [[[1, 1, 0]], [[0, 0, 1]]]
    """
    n_rows = max(group_of_row.size, 1)
    step = max(1, max_elements // n_rows)
    for start in range(0, group_labels.shape[0], step):
        yield group_labels[start : start + step][:, group_of_row]


def grouped_reference_cumcounts(
    group_labels: npt.NDArray[np.bool_],
    group_of_sorted: npt.NDArray[np.intp],
    group_ends: npt.NDArray[np.intp],
) -> Iterator[Int64Array]:
    """Yield chunks of cumulative reference counts per distinct value, groups kept whole.

    The grouped counterpart of :func:`permuted_reference_cumcounts`: ``group_of_sorted``
    is the pooled group of each sample in sorted order (see :func:`sorted_pooled`) and
    every row of ``group_labels`` (:func:`permuted_group_labels`) one split. The last
    column of a row is that split's reference size, which varies from split to split.

    Examples
    --------
    >>> _, _, ends = sorted_pooled(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    >>> labels = np.array([[True, False], [False, True]])
    >>> np.concatenate(list(grouped_reference_cumcounts(labels, np.array([0, 0, 0, 1]), ends)))
    array([[1, 2, 3, 3],
           [0, 0, 0, 1]])
    """
    for block in row_label_chunks(group_labels, group_of_sorted):
        yield np.cumsum(block, axis=1, dtype=np.int64)[:, group_ends]


@dataclass(frozen=True)
class PooledGroups:
    """Group codes of the reference rows and of the current rows (cluster sampling).

    A group is the unit that was sampled (an image); its rows (the objects on it) may be
    correlated. Codes are ``0 .. G - 1`` on each side (:func:`~detectors._validation.
    check_groups`); in the pooled sample, reference rows come first and current groups
    are numbered after the reference ones, so no group spans both sides.

    Attributes
    ----------
    reference, current : numpy.ndarray
        Group code of each reference / current row.

    Examples
    --------
    >>> g = PooledGroups(np.array([0, 0, 1]), np.array([0, 1, 1]))
    >>> g.n_reference, g.n_current, g.pooled().tolist(), g.is_reference().tolist()
    (2, 2, [0, 0, 1, 2, 3, 3], [True, True, False, False])
    """

    reference: IntpArray
    current: IntpArray

    @property
    def n_reference(self) -> int:
        """Number of reference groups."""
        return int(self.reference.max()) + 1

    @property
    def n_current(self) -> int:
        """Number of current groups."""
        return int(self.current.max()) + 1

    def pooled(self) -> IntpArray:
        """Pooled group code of every pooled row (reference rows, then current rows)."""
        pooled: IntpArray = np.concatenate([self.reference, self.current + self.n_reference])
        return pooled

    def is_reference(self) -> BoolArray:
        """Whether each pooled group is a reference group (the observed split)."""
        return np.arange(self.n_reference + self.n_current) < self.n_reference

    def permutations(self, n_permutations: int, rng: np.random.Generator) -> BoolArray:
        """``(n_permutations + 1, G)`` group splits, row 0 observed (:func:`permuted_group_labels`)."""
        return permuted_group_labels(self.is_reference(), n_permutations, rng)
