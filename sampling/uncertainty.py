"""Uncertainty of the production model: scores near the threshold, classes near a tie.

**Rule (per predicted instance).** With detection confidence ``s``, decision threshold
``t`` and, where the instance has them, class scores ``q`` renormalised to sum to 1 with
largest ``p1`` and second largest ``p2``::

    closeness = 1 - |s - t| / max(t, 1 - t)      # 1 at the threshold, 0 at 0 or 1
    margin    = 1 - (p1 - p2)                    # 1 for a tie, 0 for a sure class
    uncertainty = max(closeness, margin)         # closeness alone without class scores

An instance with a single class score (or a row of NaN, or all zeros) has no margin.
**Per image**, :func:`image_uncertainty` takes the max (the most doubtful instance) and
the mean (how doubtful the image is overall) of its instances; an image with no
predicted instance has neither (NaN, "no signal").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sampling._checks import as_counts, as_vector, check_float, check_int
from sampling._typing import FloatArray
from sampling.errors import InvalidSignalError


def _class_margin(class_scores: npt.ArrayLike, n: int) -> FloatArray:
    """``1 - (p1 - p2)`` of each renormalised row; NaN for rows without a margin."""
    try:
        cs = np.asarray(class_scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"class_scores is not a numeric array: {exc}") from exc
    if cs.ndim != 2 or cs.shape[0] != n:
        raise InvalidSignalError(f"class_scores must have shape ({n}, C), got {cs.shape}")
    nan = np.isnan(cs)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        raise InvalidSignalError(
            f"class_scores row {row} mixes NaN and numbers; use a whole row of NaN for none"
        )
    bad = ~nan & (~np.isfinite(cs) | (cs < 0.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidSignalError(
            f"class_scores must be finite and >= 0; row {row} column {col} is "
            f"{float(cs[row, col])!r}"
        )
    margin = np.full(n, np.nan)
    if cs.shape[1] < 2:
        return margin
    filled = np.where(nan, 0.0, cs)
    totals = filled.sum(axis=1)
    has = totals > 0.0
    top2 = -np.partition(-filled[has], 1, axis=1)[:, :2] / totals[has, None]
    margin[has] = 1.0 - (top2[:, 0] - top2[:, 1])
    return margin


def instance_uncertainty(
    scores: npt.ArrayLike,
    class_scores: npt.ArrayLike | None = None,
    *,
    threshold: float = 0.5,
) -> FloatArray:
    """Uncertainty of each predicted instance, by the module's rule.

    Parameters
    ----------
    scores : array-like
        ``(n,)`` detection confidences in [0, 1].
    class_scores : array-like, optional
        ``(n, C)`` non-negative class scores; a whole row of NaN where that instance
        has none.
    threshold : float
        The production model's decision threshold, in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(n,)`` uncertainty in [0, 1] (never NaN).

    Raises
    ------
    InvalidSignalError
        Scores that are NaN or outside [0, 1], class scores of the wrong shape, negative,
        or partly NaN in a row, a threshold outside [0, 1].

    Examples
    --------
    >>> np.round(instance_uncertainty([0.5, 0.9, 0.1]), 3).tolist()
    [1.0, 0.2, 0.2]
    >>> nan = float("nan")
    >>> classes = [[0.6, 0.4], [nan, nan], [0.2, 0.2]]
    >>> np.round(instance_uncertainty([0.5, 0.9, 0.1], classes), 3).tolist()
    [1.0, 0.2, 1.0]
    >>> instance_uncertainty([0.3], threshold=0.3).tolist()
    [1.0]
    """
    s = as_vector(scores, name="scores", unit_interval=True)
    t = check_float(threshold, name="threshold", low=0.0, high=1.0)
    closeness = 1.0 - np.abs(s - t) / max(t, 1.0 - t)
    if class_scores is None:
        return np.clip(closeness, 0.0, 1.0)
    margin = _class_margin(class_scores, s.shape[0])
    both = np.fmax(closeness, margin)  # fmax: a NaN margin leaves the closeness
    out: FloatArray = np.clip(both, 0.0, 1.0)
    return out


def image_uncertainty(
    per_instance: npt.ArrayLike, image_index: npt.ArrayLike, n_images: int
) -> tuple[FloatArray, FloatArray]:
    """Max and mean instance uncertainty of each image.

    Parameters
    ----------
    per_instance : array-like
        ``(n,)`` instance uncertainties in [0, 1] (:func:`instance_uncertainty`).
    image_index : array-like
        ``(n,)`` the image ``0 .. n_images - 1`` each instance belongs to.
    n_images : int
        Images, including those with no instance.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(n_images,)`` max and mean; NaN for an image with no instance.

    Raises
    ------
    InvalidSignalError
        Lengths that differ, NaN or values outside [0, 1], an index outside the images.

    Examples
    --------
    >>> top, mean = image_uncertainty([0.2, 0.8, 0.5], [0, 0, 2], 3)
    >>> top.tolist(), mean.tolist()
    ([0.8, nan, 0.5], [0.5, nan, 0.5])
    """
    n_images = check_int(n_images, name="n_images", minimum=0)
    values = as_vector(per_instance, name="per_instance", unit_interval=True)
    index = as_counts(image_index, name="image_index", n=values.shape[0])
    if index.size and int(index.max()) >= n_images:
        row = int(np.argmax(index))
        raise InvalidSignalError(
            f"image_index row {row} is {int(index[row])}, outside 0 .. {n_images - 1}"
        )
    counts = np.bincount(index, minlength=n_images)
    top = np.full(n_images, -np.inf)
    np.maximum.at(top, index, values)
    sums = np.bincount(index, weights=values, minlength=n_images)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
    top[counts == 0] = np.nan
    return top, mean


__all__ = ["image_uncertainty", "instance_uncertainty"]
