"""Chi-square test of a categorical feature (class mix), calibrated by permutation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from detectors._typing import Float64Array, Int64Array
from detectors._validation import Shape
from detectors.base import BaseDetector
from detectors.permutation import PooledGroups, null_threshold, permutation_p_value
from detectors.result import DriftResult


def chi_square_statistic(ref_counts: Int64Array, cur_counts: Int64Array) -> Float64Array:
    """Pearson chi-square of each ``2 x K`` table (one row of each argument per table).

    Categories empty on both sides contribute nothing.

    Examples
    --------
    >>> chi_square_statistic(np.array([[10, 10]]), np.array([[10, 10]]))
    array([0.])
    >>> chi_square_statistic(np.array([[20, 0]]), np.array([[0, 20]]))
    array([40.])
    """
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    column = ref + cur
    n_ref = ref.sum(axis=1, keepdims=True)
    n_cur = cur.sum(axis=1, keepdims=True)
    total = n_ref + n_cur
    with np.errstate(divide="ignore", invalid="ignore"):
        exp_ref = column * n_ref / total
        exp_cur = column * n_cur / total
        terms = np.where(column > 0, (ref - exp_ref) ** 2 / exp_ref, 0.0) + np.where(
            column > 0, (cur - exp_cur) ** 2 / exp_cur, 0.0
        )
    return np.asarray(terms.sum(axis=1), dtype=np.float64)


class ChiSquareDetector(BaseDetector):
    """Pearson chi-square between the category frequencies of reference and current.

    Input is one category code per sample (for example the class id of each predicted
    instance); every distinct value is a category. The threshold and p-value come from
    the exact permutation null: relabelling the pooled sample draws the current
    counts from a multivariate hypergeometric distribution, so no chi-square
    approximation (and no minimum expected count) is needed.

    With groups (the image of each object), images are the unit: each group's count
    vector over the categories moves as a whole, so the null of the same statistic
    carries the overdispersion of objects that share an image (scenes of one kind hold
    many objects of the same classes), and the test stays exact for exchangeable images.

    Parameters
    ----------
    alpha, n_permutations, random_state, feature
        See :class:`~detectors.base.BaseDetector`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = ChiSquareDetector(feature="class").fit(rng.choice(4, size=400))
    >>> same = det.score(rng.choice(4, size=200))
    >>> skewed = det.score(rng.choice(4, size=200, p=[0.4, 0.2, 0.2, 0.2]))
    >>> same.drift_detected, skewed.drift_detected, round(skewed.statistic, 2)
    (False, True, 18.03)

    Twenty objects on each image, whose class mix varies from image to image: counted
    object by object, an A/A split looks drifted; counted image by image, it does not.

    >>> rng = np.random.default_rng(1)
    >>> mixes = rng.dirichlet(np.ones(4), size=60)
    >>> codes = np.concatenate([rng.choice(4, size=20, p=p) for p in mixes])
    >>> image = np.repeat(np.arange(60), 20)
    >>> objects = ChiSquareDetector().fit(codes[:800]).score(codes[800:])
    >>> by_image = ChiSquareDetector().fit(codes[:800], image[:800]).score(codes[800:], image[800:])
    >>> objects.drift_detected, by_image.drift_detected, round(by_image.p_value, 3)
    (True, False, 0.248)
    >>> by_image.n_reference, by_image.n_reference_groups, by_image.n_current_groups
    (800, 40, 20)
    """

    name = "chi_square"
    input_shape: ClassVar[Shape] = "univariate"

    def _fit(self, reference: Float64Array) -> None:
        self.reference_categories_, self.reference_counts_ = np.unique(
            reference, return_counts=True
        )

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        categories = np.union1d(self.reference_categories_, np.unique(current))
        ref_counts = np.zeros(categories.size, dtype=np.int64)
        ref_counts[np.searchsorted(categories, self.reference_categories_)] = self.reference_counts_
        cur_counts = np.bincount(
            np.searchsorted(categories, current), minlength=categories.size
        ).astype(np.int64)
        observed = float(chi_square_statistic(ref_counts[None], cur_counts[None])[0])
        pooled = ref_counts + cur_counts
        null_cur = rng.multivariate_hypergeometric(
            pooled, int(current.size), size=self.n_permutations
        ).astype(np.int64)
        null = chi_square_statistic(pooled[None] - null_cur, null_cur)
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=int(current.size),
            details={"n_categories": float(categories.size)},
        )

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        pooled = np.concatenate([self.reference_, current])
        categories, codes = np.unique(pooled, return_inverse=True)
        n_groups = groups.n_reference + groups.n_current
        # Count vector of every group over the categories: (G, K).
        flat = groups.pooled() * categories.size + codes
        per_group = np.bincount(flat, minlength=n_groups * categories.size)
        per_group = per_group.reshape(n_groups, categories.size).astype(np.int64)
        splits = groups.permutations(self.n_permutations, rng)
        ref_counts = splits.astype(np.int64) @ per_group
        stats = chi_square_statistic(ref_counts, per_group.sum(axis=0)[None] - ref_counts)
        observed, null = float(stats[0]), stats[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=int(current.size),
            details={"n_categories": float(categories.size)},
            groups=groups,
        )
