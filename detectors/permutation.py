"""Permutation calibration: p-values, thresholds and vectorised label permutations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from detectors._typing import Float64Array, Int64Array

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
