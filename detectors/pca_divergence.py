"""PCA projection followed by per-component histogram divergences with an aggregate."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

from detectors._validation import Shape
from detectors.base import BaseDetector, check_int, check_positive_float
from detectors.binned import binned_null
from detectors.histogram import (
    bin_counts,
    js_divergence,
    kl_divergence,
    reference_bin_edges,
    tie_free_null_counts,
)
from detectors.permutation import null_threshold, permutation_p_value
from detectors.result import DriftResult
from monitor.errors import InvalidInputError

FloatVec = npt.NDArray[np.float64]
FloatMat = npt.NDArray[np.float64]
IntMat = npt.NDArray[np.int64]

Divergence = Literal["jensen_shannon", "kullback_leibler"]
Correction = Literal["bonferroni", "fdr_bh"]
DIVERGENCES: tuple[Divergence, ...] = ("jensen_shannon", "kullback_leibler")
CORRECTIONS: tuple[Correction, ...] = ("bonferroni", "fdr_bh")


def _scatter(x: FloatMat) -> tuple[FloatVec, FloatMat]:
    """Mean and centred scatter matrix ``sum (x - mean)(x - mean)^T`` (float32 product)."""
    mean = x.mean(axis=0)
    centred = (x - mean).astype(np.float32)
    scatter: FloatMat = (centred.T @ centred).astype(np.float64)
    return mean, scatter


def adjusted_p_values(p_values: npt.ArrayLike, correction: Correction) -> FloatVec:
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
        adj: FloatVec = np.minimum(1.0, p * k)
        return adj
    order = np.argsort(p)
    scaled = p[order] * k / np.arange(1, k + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(k)
    out[order] = np.minimum(1.0, monotone)
    return out


class PCADivergenceDetector(BaseDetector):
    """Per-component JS or KL divergence after a PCA projection, with a corrected aggregate.

    ``fit`` keeps the reference's mean and centred scatter matrix. ``score`` combines them
    with the current window's to get the principal axes of the pooled sample (a symmetric
    function of the pooled sample, so permutations need no refit, and a new direction of
    variance that appears only in the current window is still seen), projects both
    samples, and tests each component with a histogram divergence on reference-quantile
    bins, calibrated by permutation. The window is flagged when any component is
    significant after the multiple-testing ``correction``.

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

    def __init__(
        self,
        *,
        n_components: int = 10,
        divergence: Divergence = "jensen_shannon",
        correction: Correction = "bonferroni",
        n_bins: int = 10,
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
        self.smoothing = check_positive_float(smoothing, "smoothing")

    def _fit(self, reference: FloatMat) -> None:
        self.reference_mean_, self.reference_scatter_ = _scatter(reference)

    def _divergences(self, ref_counts: IntMat, cur_counts: IntMat) -> FloatVec:
        if self.divergence == "jensen_shannon":
            return js_divergence(ref_counts, cur_counts)
        forward = kl_divergence(cur_counts, ref_counts, self.smoothing)
        result: FloatVec = forward + kl_divergence(ref_counts, cur_counts, self.smoothing)
        return result

    def pooled_axes(self, current: FloatMat) -> tuple[FloatVec, FloatMat]:
        """Return the pooled mean and the ``(n_features, k)`` leading principal axes."""
        n, m = self.n_reference_, current.shape[0]
        cur_mean, cur_scatter = _scatter(current)
        delta = self.reference_mean_ - cur_mean
        scatter = self.reference_scatter_ + cur_scatter + (n * m / (n + m)) * np.outer(delta, delta)
        eigvals, eigvecs = np.linalg.eigh(scatter)
        eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]
        rank = int(np.count_nonzero(eigvals > eigvals[0] * 1e-10)) if eigvals[0] > 0 else 0
        k = min(self.n_components, rank)
        if k == 0:
            raise InvalidInputError("reference and current together are constant (rank 0)")
        mean = (n * self.reference_mean_ + m * cur_mean) / (n + m)
        return mean, eigvecs[:, :k]

    def _score(self, current: FloatMat, rng: np.random.Generator) -> DriftResult:
        mean, axes = self.pooled_axes(current)
        # float64 projections: float32 rounding creates ties among 100k values, which
        # would force the slow tie-aware permutation path.
        ref_proj = self.reference_ @ axes - mean @ axes
        cur_proj = current @ axes - mean @ axes
        n, m, k = self.n_reference_, current.shape[0], axes.shape[1]

        observed = np.empty(k)
        nulls: list[FloatVec] = []
        shared_null: FloatVec | None = None
        for i in range(k):
            ref_i, cur_i = ref_proj[:, i], cur_proj[:, i]
            edges = reference_bin_edges(np.sort(ref_i), self.n_bins)
            observed[i] = self._divergences(
                bin_counts(edges, ref_i, self.n_bins)[None],
                bin_counts(edges, cur_i, self.n_bins)[None],
            )[0]
            pooled = np.sort(np.concatenate([ref_i, cur_i]))
            if np.all(pooled[1:] != pooled[:-1]):
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
            n_current=m,
            details=details,
        )
