"""Histograms on reference-quantile bins, their permutation nulls and divergences.

Bin edges are the reference's ``j / n_bins`` quantiles (``inverted_cdf``: the
``ceil(j n / n_bins)``-th smallest reference value), deduplicated only implicitly: tied
edges leave empty bins, so every split yields exactly ``n_bins`` counts. A value ``x``
falls in bin ``#{edges < x}``.

Two nulls are provided. :func:`binned_from_cumcounts` bins arbitrary permutations of the
pooled sample (valid with ties). :func:`tie_free_null_counts` is exact and ``O(n_bins)``
per draw when the pooled sample has no ties: in a random interleaving of ``n`` reference
and ``m`` current points the numbers of current points in the ``n + 1`` gaps between
consecutive reference points are uniform over compositions of ``m``, i.e.
Dirichlet-multinomial with all parameters 1, and summing gaps bin by bin gives a
Dirichlet-multinomial whose parameters are the numbers of gaps per bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors._typing import Float64Array, Int64Array


def quantile_ranks(n: int, n_bins: int) -> Int64Array:
    """Return the 1-based reference ranks of the ``n_bins - 1`` inner bin edges.

    Examples
    --------
    >>> quantile_ranks(10, 4)
    array([3, 5, 8])
    """
    j = np.arange(1, n_bins, dtype=np.int64)
    return -((-j * n) // n_bins)


def reference_bin_edges(reference_sorted: Float64Array, n_bins: int) -> Float64Array:
    """Return the inner bin edges from a sorted reference sample.

    Examples
    --------
    >>> reference_bin_edges(np.arange(10.0), 4)
    array([2., 4., 7.])
    """
    edges: Float64Array = reference_sorted[quantile_ranks(reference_sorted.size, n_bins) - 1]
    return edges


def bin_counts(edges: Float64Array, samples: Float64Array, n_bins: int) -> Int64Array:
    """Count ``samples`` per bin (bin of ``x`` is the number of edges below ``x``).

    Examples
    --------
    >>> bin_counts(np.array([2.0, 4.0, 7.0]), np.array([0.0, 2.0, 2.5, 9.0]), 4)
    array([2, 1, 0, 1])
    """
    idx = np.searchsorted(edges, samples, side="left")
    return np.bincount(idx, minlength=n_bins).astype(np.int64)


def counts_below(reference_sorted: Float64Array, samples: Float64Array) -> Int64Array:
    """Count ``samples`` by how many reference values lie strictly below each.

    Entry ``p`` of the ``(n + 1,)`` result counts the samples with exactly ``p``
    reference values below them. Counts of chunks add up to the counts of the whole,
    and they hold every binning on the reference's quantiles
    (:func:`bin_counts_from_below`).

    Examples
    --------
    >>> counts_below(np.array([1.0, 2.0, 3.0]), np.array([0.5, 2.0, 2.5, 9.0]))
    array([1, 1, 1, 1])
    """
    below = np.searchsorted(reference_sorted, samples, side="left")
    return np.bincount(below, minlength=reference_sorted.size + 1).astype(np.int64)


def bin_counts_from_below(below: Int64Array, n_bins: int) -> Int64Array:
    """Bin counts on the reference-quantile edges from :func:`counts_below` counts.

    A sample with ``p`` reference values below it lies above the edge of rank ``r``
    (the ``r``-th smallest reference value) exactly when ``p >= r``, so its bin is the
    number of edge ranks ``<= p``: the same bin as :func:`bin_counts` gives.

    Examples
    --------
    >>> reference, samples = np.arange(10.0), np.array([-1.0, 2.0, 2.5, 6.9, 7.0, 11.0])
    >>> below = counts_below(reference, samples)
    >>> bin_counts_from_below(below, 4), bin_counts(reference_bin_edges(reference, 4), samples, 4)
    (array([2, 1, 2, 1]), array([2, 1, 2, 1]))
    """
    n = below.size - 1
    bins = np.searchsorted(quantile_ranks(n, n_bins), np.arange(n + 1), side="right")
    counts = np.zeros(n_bins, dtype=np.int64)
    np.add.at(counts, bins, below)
    return counts


@dataclass(frozen=True)
class MergedCounts:
    """A current sample summarised against a fitted reference, chunk by chunk.

    Attributes
    ----------
    below : numpy.ndarray
        ``(n + 1,)`` current values by the number of reference values strictly below
        them (:func:`counts_below`, summed over chunks); ``n`` is the reference size.
    tie_free : bool
        Whether no two values of the pooled sample (reference and current) are equal,
        as the caller established; only then is the closed-form null exact.

    Examples
    --------
    >>> merged = MergedCounts(np.array([1, 0, 2]), tie_free=True)
    >>> merged.n_current, merged.n_reference
    (3, 2)
    """

    below: Int64Array
    tie_free: bool

    @property
    def n_current(self) -> int:
        """Number of current values counted."""
        return int(self.below.sum())

    @property
    def n_reference(self) -> int:
        """Size of the reference the counts were taken against."""
        return int(self.below.size) - 1


def binned_from_cumcounts(
    cum_ref: Int64Array, cum_total: Int64Array, n: int, n_bins: int
) -> tuple[Int64Array, Int64Array]:
    """Bin every split given as cumulative reference counts per distinct pooled value.

    Parameters
    ----------
    cum_ref : numpy.ndarray
        ``(R, U)`` reference samples ``<=`` each distinct pooled value, one row per split.
    cum_total : numpy.ndarray
        ``(U,)`` pooled samples ``<=`` each distinct value.
    n : int
        Reference size (every row of ``cum_ref`` ends at ``n``).
    n_bins : int
        Number of bins.

    Returns
    -------
    ref_counts, cur_counts : numpy.ndarray
        ``(R, n_bins)`` counts per bin, bins from each split's own reference quantiles.

    Examples
    --------
    >>> cum_ref = np.array([[1, 2, 2, 2]])  # reference {v0, v1}, current {v2, v3}
    >>> binned_from_cumcounts(cum_ref, np.array([1, 2, 3, 4]), 2, 2)
    (array([[1, 1]]), array([[0, 2]]))
    """
    rows, n_values = cum_ref.shape
    offsets = np.arange(rows, dtype=np.int64) * (n + 1)
    flat = (cum_ref + offsets[:, None]).ravel()
    targets = quantile_ranks(n, n_bins)[None, :] + offsets[:, None]
    edge_idx = np.searchsorted(flat, targets.ravel(), side="left").reshape(rows, -1)
    edge_idx -= (np.arange(rows) * n_values)[:, None]
    ref_cum = np.take_along_axis(cum_ref, edge_idx, axis=1)
    cur_cum = cum_total[edge_idx] - ref_cum
    m = int(cum_total[-1]) - n
    ref_counts = np.diff(ref_cum, axis=1, prepend=0, append=n)
    cur_counts = np.diff(cur_cum, axis=1, prepend=0, append=m)
    return ref_counts, cur_counts


def tie_free_null_counts(
    n: int, m: int, n_bins: int, size: int, rng: np.random.Generator
) -> tuple[Int64Array, Int64Array]:
    """Draw the exact permutation null of the binned counts for tie-free pooled data.

    Returns
    -------
    ref_counts : numpy.ndarray
        ``(n_bins,)`` reference counts, the same for every permutation.
    cur_counts : numpy.ndarray
        ``(size, n_bins)`` current counts, Dirichlet-multinomial draws.

    Examples
    --------
    >>> ref, cur = tie_free_null_counts(10, 6, 4, 3, np.random.default_rng(0))
    >>> ref, cur.sum(axis=1)
    (array([3, 2, 3, 2]), array([6, 6, 6]))
    """
    ranks = np.concatenate([[0], quantile_ranks(n, n_bins), [n]])
    ref_counts = np.diff(ranks)
    gaps = ref_counts.astype(np.float64)
    gaps[-1] += 1.0
    weights = rng.standard_gamma(np.broadcast_to(gaps, (size, n_bins)))
    probs = weights / weights.sum(axis=1, keepdims=True)
    return ref_counts.astype(np.int64), rng.multinomial(m, probs).astype(np.int64)


def _xlogy_ratio(p: Float64Array, q: Float64Array) -> Float64Array:
    # p * log(p / q) with 0 * log(0 / q) = 0.
    out = np.zeros_like(p)
    mask = p > 0
    out[mask] = p[mask] * np.log(p[mask] / q[mask])
    return out


def js_divergence(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> Float64Array:
    """Jensen–Shannon divergence in bits (0 to 1) between rows of two count arrays.

    Examples
    --------
    >>> js_divergence([[5, 5], [10, 0]], [[5, 5], [0, 10]])
    array([0., 1.])
    """
    p = np.atleast_2d(np.asarray(ref_counts, dtype=np.float64))
    q = np.atleast_2d(np.asarray(cur_counts, dtype=np.float64))
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    mix = 0.5 * (p + q)
    js = 0.5 * (_xlogy_ratio(p, mix) + _xlogy_ratio(q, mix)).sum(axis=1) / np.log(2.0)
    clipped: Float64Array = np.clip(js, 0.0, 1.0)
    return clipped


def smoothed_proportions(counts: npt.ArrayLike, smoothing: float) -> Float64Array:
    """Add ``smoothing`` pseudo-counts to every bin and normalise each row.

    Examples
    --------
    >>> smoothed_proportions([[3, 0, 1]], 0.5)
    array([[0.636..., 0.0909..., 0.2727...]])
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64)) + smoothing
    props: Float64Array = c / c.sum(axis=1, keepdims=True)
    return props


def kl_divergence(
    p_counts: npt.ArrayLike, q_counts: npt.ArrayLike, smoothing: float
) -> Float64Array:
    """Smoothed ``KL(p || q)`` in nats between rows of two count arrays.

    Examples
    --------
    >>> kl_divergence([[10, 0]], [[5, 5]], 0.5).round(4)
    array([0.5082])
    """
    p = smoothed_proportions(p_counts, smoothing)
    q = smoothed_proportions(q_counts, smoothing)
    kl: Float64Array = (p * np.log(p / q)).sum(axis=1)
    return kl


def population_stability_index(
    ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike, epsilon: float
) -> Float64Array:
    """PSI ``sum((c - r) * ln(c / r))`` with proportions floored at ``epsilon``.

    Examples
    --------
    >>> population_stability_index([[50, 50]], [[60, 40]], 1e-4).round(4)
    array([0.0405])
    """
    r = np.atleast_2d(np.asarray(ref_counts, dtype=np.float64))
    c = np.atleast_2d(np.asarray(cur_counts, dtype=np.float64))
    r = np.maximum(r / r.sum(axis=1, keepdims=True), epsilon)
    c = np.maximum(c / c.sum(axis=1, keepdims=True), epsilon)
    psi: Float64Array = ((c - r) * np.log(c / r)).sum(axis=1)
    return psi
