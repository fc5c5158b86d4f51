"""PCA projection followed by per-component histogram divergences with an aggregate."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from scipy.linalg import eigh
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from detectors._typing import Float64Array, Int64Array
from detectors._validation import Shape
from detectors.base import BaseDetector, check_int, check_positive_float
from detectors.binned import binned_null, grouped_binned_null
from detectors.errors import InvalidInputError
from detectors.histogram import (
    bin_counts,
    js_divergence,
    kl_divergence,
    reference_bin_edges,
    tie_free_null_counts,
)
from detectors.permutation import PooledGroups, null_threshold, permutation_p_value
from detectors.result import DriftResult

Divergence = Literal["jensen_shannon", "kullback_leibler"]
Correction = Literal["bonferroni", "fdr_bh"]
DIVERGENCES: tuple[Divergence, ...] = ("jensen_shannon", "kullback_leibler")
CORRECTIONS: tuple[Correction, ...] = ("bonferroni", "fdr_bh")


def _scatter(x: npt.NDArray[np.floating[Any]]) -> tuple[Float64Array, Float64Array]:
    """Mean and centred scatter matrix ``sum (x - mean)(x - mean)^T`` (float32 product)."""
    mean = x.mean(axis=0, dtype=np.float64)
    centred = (x - mean).astype(np.float32)
    scatter: Float64Array = (centred.T @ centred).astype(np.float64)
    return mean, scatter


def project(
    x: npt.NDArray[np.floating[Any]], axes: Float64Array, rng: np.random.Generator
) -> Float64Array:
    """``x @ axes`` as float64; float32 input is projected in float32 and tie-broken.

    A float32 product rounds 100,000 projections into many ties, which would force the
    slow tie-aware permutation path. Each float32 projection is therefore moved by an
    independent uniform jitter of at most a quarter of its float32 spacing: distinct
    values keep their order and tied ones are ordered at random. Random tie-breaking,
    drawn independently of which side a row is on, keeps the permutation test exact.

    Examples
    --------
    >>> x = np.ones((3, 2), dtype=np.float32)
    >>> p = project(x, np.array([[1.0], [2.0]]), np.random.default_rng(0)).ravel()
    >>> bool(np.all(np.abs(p - 3.0) < 1e-6)), np.unique(p).size
    (True, 3)
    """
    if x.dtype != np.float32:
        out: Float64Array = x.astype(np.float64, copy=False) @ axes
        return out
    low = x @ axes.astype(np.float32)
    jitter = (rng.random(low.shape) - 0.5) * 0.5 * np.spacing(np.abs(low))
    projected: Float64Array = low.astype(np.float64) + jitter
    return projected


def top_eigenpairs(matrix: Float64Array, k: int) -> tuple[Float64Array, Float64Array]:
    """Leading ``k`` eigenvalues (descending) and eigenvectors of a symmetric matrix.

    LAPACK runs single-threaded here: on a busy machine a multi-threaded ``eigh`` of a
    512 x 512 matrix took 2.8 s against 0.05 s on one thread (its tridiagonal reduction
    is a long chain of small, synchronised steps).

    Examples
    --------
    >>> vals, vecs = top_eigenpairs(np.diag([1.0, 3.0, 2.0]), 2)
    >>> vals, np.abs(vecs)
    (array([3., 2.]), array([[0., 0.],
           [1., 0.],
           [0., 1.]]))
    """
    d = matrix.shape[0]
    k = min(k, d)
    with threadpool_limits(limits=1, user_api="blas"):
        vals, vecs = eigh(matrix, subset_by_index=[d - k, d - 1])
    return vals[::-1], vecs[:, ::-1]


def has_ties(reference_sorted: Float64Array, current: Float64Array) -> bool:
    """Whether the pooled sample has a repeated value (``reference_sorted`` is sorted).

    Examples
    --------
    >>> has_ties(np.array([1.0, 2.0]), np.array([3.0, 0.5])), has_ties(np.array([1.0]), np.r_[1.0])
    (False, True)
    """
    if np.any(reference_sorted[1:] == reference_sorted[:-1]):
        return True
    cur = np.sort(current)
    if np.any(cur[1:] == cur[:-1]):
        return True
    idx = np.minimum(np.searchsorted(reference_sorted, cur), reference_sorted.size - 1)
    return bool(np.any(reference_sorted[idx] == cur))


def adjusted_p_values(p_values: npt.ArrayLike, correction: Correction) -> Float64Array:
    """Bonferroni or Benjamini–Hochberg adjusted p-values.

    Examples
    --------
    >>> adjusted_p_values([0.01, 0.04, 0.03], "bonferroni")
    array([0.03, 0.12, 0.09])
    >>> adjusted_p_values([0.01, 0.04, 0.03], "fdr_bh")
    array([0.03, 0.04, 0.04])
    """
    p = np.asarray(p_values, dtype=np.float64)
    k = p.size
    if correction == "bonferroni":
        adj: Float64Array = np.minimum(1.0, p * k)
        return adj
    order = np.argsort(p)
    scaled = p[order] * k / np.arange(1, k + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(k)
    out[order] = np.minimum(1.0, monotone)
    return out


class PCADivergenceDetector(BaseDetector):
    """Per-component JS or KL divergence after a PCA projection, with a corrected aggregate.

    ``fit`` keeps the reference's mean and the centred scatter matrix of a Bernoulli
    subsample of it: each row is kept with probability ``min(1, pca_samples /
    n_reference)``. ``score`` keeps current rows with the same probability and combines
    the two scatters into the principal axes of the kept pooled rows. The marks are drawn
    independently of the side a row is on, so the axes are a symmetric function of the
    marked pooled sample: label permutations need no PCA refit and stay exact, and a new
    direction of variance that appears only in the current window is still seen. Both
    samples are projected and each component is tested with a histogram divergence on
    reference-quantile bins, calibrated by permutation (of whole groups when groups are
    given: the axes do not depend on the labels, so one set of group splits is re-binned
    per component). The window is flagged when any component is significant after the
    multiple-testing ``correction``. float32 input
    is kept as float32 (projections are computed in float64).

    ``statistic`` is the largest component divergence and ``threshold`` the divergence
    at which one component alone triggers the alarm (the ``1 - alpha / k`` null quantile).
    ``p_value`` is the corrected global p-value (Bonferroni, or Simes for ``fdr_bh``).
    ``details`` holds ``mean_divergence``, ``max_divergence``, ``share_drifted`` (share
    of components significant after correction), ``n_components`` and
    ``component_<i>_divergence`` / ``component_<i>_p_value``.

    Parameters
    ----------
    n_components : int
        Principal components tested (capped at the data's rank).
    divergence : {"jensen_shannon", "kullback_leibler"}
        Per-component divergence (KL is the smoothed symmetric sum of both directions).
    correction : {"bonferroni", "fdr_bh"}
        Multiple-testing correction across components.
    n_bins : int
        Quantile bins per component.
    pca_samples : int
        About how many reference rows estimate the axes (the current window is
        subsampled at the same rate).
    smoothing : float
        Pseudo-count per bin for KL.
    alpha : float
        False-alarm rate of the whole window.
    n_permutations : int
        Permutation draws per component (cheap for tie-free projections).
    random_state : int or None
        Seed.
    feature : str
        Feature name copied into results.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> det = PCADivergenceDetector(n_components=4).fit(rng.normal(size=(400, 8)))
    >>> same = det.score(rng.normal(size=(300, 8)))
    >>> shifted = det.score(rng.normal(size=(300, 8)) + np.r_[0.6, np.zeros(7)])
    >>> same.drift_detected, shifted.drift_detected, shifted.details["share_drifted"]
    (False, True, 0.5)
    """

    name = "pca_divergence"
    input_shape: ClassVar[Shape] = "multivariate"
    keeps_float32: ClassVar[bool] = True

    def __init__(
        self,
        *,
        n_components: int = 10,
        divergence: Divergence = "jensen_shannon",
        correction: Correction = "bonferroni",
        n_bins: int = 10,
        pca_samples: int = 5000,
        smoothing: float = 0.5,
        alpha: float = 0.05,
        n_permutations: int = 2000,
        random_state: int | None = 0,
        feature: str = "embedding",
    ) -> None:
        super().__init__(
            alpha=alpha, n_permutations=n_permutations, random_state=random_state, feature=feature
        )
        self.n_components = check_int(n_components, "n_components", 1)
        if divergence not in DIVERGENCES:
            raise InvalidInputError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
        if correction not in CORRECTIONS:
            raise InvalidInputError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        self.divergence: Divergence = divergence
        self.correction: Correction = correction
        self.n_bins = check_int(n_bins, "n_bins", 2)
        self.pca_samples = check_int(pca_samples, "pca_samples", 2)
        self.smoothing = check_positive_float(smoothing, "smoothing")

    def _fit(self, reference: Float64Array) -> None:
        n = reference.shape[0]
        self.pca_rate_ = min(1.0, self.pca_samples / n)
        # A stream of its own: the current rows' marks must be independent of these.
        seed = None if self.random_state is None else [self.random_state, 1]
        kept = self._marks(n, np.random.default_rng(seed))
        self.reference_mean_ = reference.mean(axis=0, dtype=np.float64)
        self.reference_kept_ = int(kept.size)
        self.reference_kept_mean_, self.reference_scatter_ = _scatter(reference[kept])

    def _marks(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
        if self.pca_rate_ >= 1.0:
            return np.arange(n)
        return np.flatnonzero(rng.random(n) < self.pca_rate_)

    def _divergences(self, ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
        if self.divergence == "jensen_shannon":
            return js_divergence(ref_counts, cur_counts)
        forward = kl_divergence(cur_counts, ref_counts, self.smoothing)
        result: Float64Array = forward + kl_divergence(ref_counts, cur_counts, self.smoothing)
        return result

    def pooled_axes(
        self, current: Float64Array, rng: np.random.Generator | None = None
    ) -> tuple[Float64Array, Float64Array]:
        """Return the pooled mean and the ``(n_features, k)`` leading principal axes.

        ``rng`` draws which current rows join the PCA when the reference was subsampled
        (default: a generator seeded with ``random_state``).
        """
        if rng is None:
            rng = np.random.default_rng(self.random_state)
        n, m = self.n_reference_, current.shape[0]
        kept = self._marks(m, rng)
        n_kept, m_kept = self.reference_kept_, kept.size
        scatter = self.reference_scatter_
        if m_kept:
            cur_mean, cur_scatter = _scatter(current[kept])
            delta = self.reference_kept_mean_ - cur_mean
            weight = n_kept * m_kept / (n_kept + m_kept)
            scatter = scatter + cur_scatter + weight * np.outer(delta, delta)
        eigvals, eigvecs = top_eigenpairs(scatter, self.n_components)
        largest = float(np.trace(scatter))
        rank = int(np.count_nonzero(eigvals > largest * 1e-10)) if largest > 0 else 0
        k = min(self.n_components, rank)
        if k == 0:
            raise InvalidInputError("reference and current together are constant (rank 0)")
        cur_full_mean = current.mean(axis=0, dtype=np.float64)
        mean = (n * self.reference_mean_ + m * cur_full_mean) / (n + m)
        return mean, eigvecs[:, :k]

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        _, axes = self.pooled_axes(current, rng)
        ref_proj = project(self.reference_, axes, rng)
        cur_proj = project(current, axes, rng)
        n, m, k = self.n_reference_, current.shape[0], axes.shape[1]

        observed = np.empty(k)
        nulls: list[Float64Array] = []
        shared_null: Float64Array | None = None
        for i in range(k):
            ref_i, cur_i = ref_proj[:, i], cur_proj[:, i]
            ref_sorted = np.sort(ref_i)
            observed[i] = self._observed(ref_sorted, cur_i)
            if not has_ties(ref_sorted, cur_i):
                # Tie-free components share one exact null: it depends only on n, m, bins.
                if shared_null is None:
                    ref_row, cur_null = tie_free_null_counts(
                        n, m, self.n_bins, self.n_permutations, rng
                    )
                    shared_null = self._divergences(
                        np.broadcast_to(ref_row, cur_null.shape), cur_null
                    )
                nulls.append(shared_null)
            else:
                ref_null, cur_null = binned_null(
                    ref_i, cur_i, self.n_bins, self.n_permutations, rng
                )
                nulls.append(self._divergences(ref_null, cur_null))
        return self._aggregate(observed, nulls, m, None)

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        _, axes = self.pooled_axes(current, rng)
        ref_proj = project(self.reference_, axes, rng)
        cur_proj = project(current, axes, rng)
        # One set of group splits serves every component; each component re-bins them.
        splits = groups.permutations(self.n_permutations, rng)
        group_of_row = groups.pooled()
        k = axes.shape[1]
        observed = np.empty(k)
        nulls: list[Float64Array] = []
        for i in range(k):
            ref_i, cur_i = ref_proj[:, i], cur_proj[:, i]
            observed[i] = self._observed(np.sort(ref_i), cur_i)
            ref_null, cur_null = grouped_binned_null(
                ref_i, cur_i, group_of_row, splits, self.n_bins
            )
            nulls.append(self._divergences(ref_null, cur_null))
        return self._aggregate(observed, nulls, current.shape[0], groups)

    def _observed(self, ref_sorted: Float64Array, cur: Float64Array) -> float:
        """Divergence of one component on the reference's quantile bins."""
        edges = reference_bin_edges(ref_sorted, self.n_bins)
        return float(
            self._divergences(
                bin_counts(edges, ref_sorted, self.n_bins)[None],
                bin_counts(edges, cur, self.n_bins)[None],
            )[0]
        )

    def _aggregate(
        self,
        observed: Float64Array,
        nulls: list[Float64Array],
        n_current: int,
        groups: PooledGroups | None,
    ) -> DriftResult:
        """Per-component p-values, corrected into the window's verdict."""
        k = observed.size
        p_values = np.array(
            [permutation_p_value(obs, null) for obs, null in zip(observed, nulls, strict=True)]
        )
        adjusted = adjusted_p_values(p_values, self.correction)
        details = {
            "mean_divergence": float(observed.mean()),
            "max_divergence": float(observed.max()),
            "share_drifted": float(np.mean(adjusted <= self.alpha)),
            "n_components": float(k),
        }
        for i in range(k):
            details[f"component_{i}_divergence"] = float(observed[i])
            details[f"component_{i}_p_value"] = float(p_values[i])
        return self._result(
            statistic=float(observed.max()),
            threshold=null_threshold(np.concatenate(nulls), self.alpha / k),
            p_value=float(adjusted.min()),
            n_current=n_current,
            details=details,
            groups=groups,
        )
