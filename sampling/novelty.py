"""Novelty: how far a production embedding lies from the reference it should resemble.

**Rule.** Let ``d(x)`` be the mean Euclidean distance of ``x`` to its ``k`` nearest
reference vectors, and ``m`` the median of the reference's own leave-one-out ``k``-NN mean
distances (how far a typical reference point is from its neighbours). Then::

    novelty(x) = max(0, 1 - m / d(x))        (0 when d(x) = 0)

which is 0 for a point no farther from the reference than a typical reference point is
from its own neighbours, 0.5 at twice that distance, 0.9 at ten times, and tends to 1 far
away. It is monotone in ``d(x) / m``, so only the ranking within one reference matters,
and it needs no tuning. (With ``m = 0``, a reference of duplicates, any ``d(x) > 0``
scores 1.)

The neighbours are exact (blocked numpy matrix products, :mod:`sampling._neighbours`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.errors import NotFittedError
from sampling._checks import as_counts, as_matrix, check_int
from sampling._neighbours import knn_mean_distance
from sampling._typing import FloatArray
from sampling.errors import InvalidSignalError


def distance_to_novelty(distance: FloatArray, scale: float) -> FloatArray:
    """Map k-NN mean distances to novelty by ``max(0, 1 - scale / distance)``.

    Parameters
    ----------
    distance : numpy.ndarray
        ``(n,)`` non-negative k-NN mean distances.
    scale : float
        The reference's median leave-one-out k-NN mean distance.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` values in [0, 1].

    Examples
    --------
    >>> distance_to_novelty(np.array([0.0, 0.5, 1.0, 2.0, 10.0]), 1.0).tolist()
    [0.0, 0.0, 0.0, 0.5, 0.9]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(distance > 0.0, scale / distance, np.inf)
    novelty: FloatArray = np.clip(1.0 - ratio, 0.0, 1.0)
    return novelty


class KNNNovelty:
    """Novelty of embeddings against a reference set by k-nearest-neighbour distance.

    Parameters
    ----------
    k : int
        Neighbours averaged, ``>= 1``; ``fit`` needs at least ``k + 1`` reference vectors.

    Attributes
    ----------
    reference_ : numpy.ndarray
        The ``(m, d)`` float32 reference, after ``fit``.
    reference_knn_ : numpy.ndarray
        ``(m,)`` leave-one-out k-NN mean distance of each reference vector.
    scale_ : float
        Median of ``reference_knn_``: the distance that scores 0 (see the module's rule).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(200, 8))
    >>> model = KNNNovelty(k=5).fit(reference)
    >>> far = np.full((1, 8), 6.0)
    >>> np.round(model.score(np.vstack([reference[:2], far])), 3).tolist()
    [0.0, 0.0, 0.866]
    """

    def __init__(self, k: int = 5) -> None:
        self.k = check_int(k, name="k", minimum=1)

    def fit(self, reference: npt.ArrayLike) -> KNNNovelty:
        """Learn the reference and its own leave-one-out k-NN distances.

        Parameters
        ----------
        reference : array-like
            ``(m, d)`` finite embeddings, ``m >= k + 1``.

        Returns
        -------
        KNNNovelty
            ``self``.

        Raises
        ------
        InvalidSignalError
            Not 2-D, NaN or inf, or fewer than ``k + 1`` rows.
        """
        ref = as_matrix(reference, name="reference")
        if ref.shape[0] < self.k + 1:
            raise InvalidSignalError(
                f"reference has {ref.shape[0]} vectors; k={self.k} needs at least {self.k + 1}"
            )
        self.reference_ = ref
        self.reference_knn_ = knn_mean_distance(ref, ref, self.k, exclude_self=True)
        self.scale_ = float(np.median(self.reference_knn_))
        return self

    def score(self, current: npt.ArrayLike) -> FloatArray:
        """Novelty of each current vector, in [0, 1].

        Parameters
        ----------
        current : array-like
            ``(n, d)`` finite embeddings with the reference's ``d``.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` float64 novelty (the module's rule).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        InvalidSignalError
            Not 2-D, NaN or inf, or a feature count other than the reference's.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError("KNNNovelty.score called before fit")
        cur = as_matrix(current, name="current", d=self.reference_.shape[1])
        distance = knn_mean_distance(cur, self.reference_, self.k)
        return distance_to_novelty(distance, self.scale_)


def instance_novelty(
    reference: npt.ArrayLike,
    reference_classes: npt.ArrayLike,
    current: npt.ArrayLike,
    current_classes: npt.ArrayLike,
    *,
    k: int = 5,
) -> FloatArray:
    """Novelty of each current instance embedding within its own class.

    Each class's current instances are scored by a :class:`KNNNovelty` fitted on the
    reference instances of that class only, so a car is compared with cars.

    Parameters
    ----------
    reference, current : array-like
        ``(m, d)`` and ``(n, d)`` instance embeddings.
    reference_classes, current_classes : array-like
        ``(m,)`` and ``(n,)`` category ids.
    k : int
        Neighbours averaged.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` novelty in [0, 1]; NaN for an instance whose class has fewer than
        ``k + 1`` reference vectors (no signal).

    Raises
    ------
    InvalidSignalError
        Shapes that do not match, NaN or inf embeddings, negative class ids, ``k < 1``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reference = np.vstack([rng.normal(0, 1, (50, 4)), rng.normal(10, 1, (50, 4))])
    >>> classes = np.repeat([1, 2], 50)
    >>> current = np.array([[10.0] * 4, [0.0] * 4, [0.0] * 4])
    >>> np.round(instance_novelty(reference, classes, current, [1, 1, 3], k=3), 3).tolist()
    [0.94, 0.0, nan]
    """
    k = check_int(k, name="k", minimum=1)
    ref = as_matrix(reference, name="reference")
    cur = as_matrix(current, name="current", d=ref.shape[1])
    ref_classes = as_counts(reference_classes, name="reference_classes", n=ref.shape[0])
    cur_classes = as_counts(current_classes, name="current_classes", n=cur.shape[0])
    out = np.full(cur.shape[0], np.nan)
    for category in np.unique(cur_classes):
        in_reference = ref_classes == category
        if int(in_reference.sum()) < k + 1:
            continue
        rows = cur_classes == category
        out[rows] = KNNNovelty(k).fit(ref[in_reference]).score(cur[rows])
    return out


__all__ = ["KNNNovelty", "distance_to_novelty", "instance_novelty"]
