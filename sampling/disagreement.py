"""Disagreement of production with the hosted reference model, from the stored shadow rows.

**Rule (per image).** From a shadow row (:mod:`monitor.quality.shadow`): the image
agreement ``a`` (IoU-weighted share of same-class matched pairs), the production-only
instances ``po`` (possibly spurious), the reference-only instances ``ro`` (possibly
missed) and the class disagreements ``cd`` among the ``matched = n_production - po``
pairs::

    share        = (po + ro + cd) / (po + ro + matched)   # 0 when both sides are empty
    disagreement = (1 - a) / 2 + share / 2

``1 - a`` sees masks that overlap badly; ``share`` counts the instances the two models
disagree on regardless of how well the rest overlaps, with spurious, missed and
confused instances weighing the same. A perfect row scores 0; an image where nothing
matches scores 1. NaN where ``agreement`` is NaN: no shadow row, no signal.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sampling._checks import as_counts, as_vector
from sampling._typing import FloatArray
from sampling.errors import InvalidSignalError


def image_disagreement(
    agreement: npt.ArrayLike,
    production_only: npt.ArrayLike,
    reference_only: npt.ArrayLike,
    class_disagreements: npt.ArrayLike,
    n_production: npt.ArrayLike,
    n_reference: npt.ArrayLike,
) -> FloatArray:
    """Disagreement of each image, by the module's rule.

    Parameters
    ----------
    agreement : array-like
        ``(n,)`` shadow agreement in [0, 1]; NaN where the image has no shadow row.
    production_only, reference_only, class_disagreements : array-like
        ``(n,)`` counts from the shadow row (any value where ``agreement`` is NaN).
    n_production, n_reference : array-like
        ``(n,)`` instances each model predicted.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` disagreement in [0, 1]; NaN where ``agreement`` is NaN.

    Raises
    ------
    InvalidSignalError
        Lengths that differ, agreement outside [0, 1], negative counts, or counts that
        cannot come from one matching (``n_production - production_only`` must equal
        ``n_reference - reference_only``, and class disagreements cannot exceed the
        matched pairs); the message names the row.

    Examples
    --------
    >>> nan = float("nan")
    >>> out = image_disagreement([1.0, 0.5, 0.0, nan], [0, 1, 2, 0], [0, 1, 0, 0],
    ...                          [0, 0, 0, 0], [3, 2, 2, 0], [3, 2, 0, 0])
    >>> np.round(out, 4).tolist()
    [0.0, 0.5833, 1.0, nan]
    """
    a = as_vector(agreement, name="agreement", allow_nan=True, unit_interval=True)
    n = a.shape[0]
    po = as_counts(production_only, name="production_only", n=n)
    ro = as_counts(reference_only, name="reference_only", n=n)
    cd = as_counts(class_disagreements, name="class_disagreements", n=n)
    n_p = as_counts(n_production, name="n_production", n=n)
    n_r = as_counts(n_reference, name="n_reference", n=n)
    has = ~np.isnan(a)
    matched = n_p - po
    checks = (
        (po > n_p, "production_only exceeds n_production"),
        (ro > n_r, "reference_only exceeds n_reference"),
        (matched != n_r - ro, "n_production - production_only != n_reference - reference_only"),
        (cd > matched, "class_disagreements exceed the matched pairs"),
    )
    for bad, what in checks:
        rows = has & bad
        if rows.any():
            row = int(np.flatnonzero(rows)[0])
            raise InvalidSignalError(
                f"shadow row {row} is inconsistent: {what} (production_only={int(po[row])}, "
                f"reference_only={int(ro[row])}, class_disagreements={int(cd[row])}, "
                f"n_production={int(n_p[row])}, n_reference={int(n_r[row])})"
            )
    union = po + ro + np.where(has, matched, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(union > 0, (po + ro + cd) / np.maximum(union, 1), 0.0)
    out: FloatArray = np.where(has, np.clip(0.5 * (1.0 - a) + 0.5 * share, 0.0, 1.0), np.nan)
    return out


__all__ = ["image_disagreement"]
