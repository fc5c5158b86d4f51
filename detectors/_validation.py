"""Input checks shared by every detector; errors name what is wrong."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from detectors.errors import InvalidInputError

Shape = Literal["univariate", "multivariate"]


def check_samples(
    data: npt.ArrayLike,
    *,
    role: str,
    shape: Shape,
    min_samples: int = 2,
    keep_float32: bool = False,
) -> npt.NDArray[np.floating[Any]]:
    """Return ``data`` as a finite float64 (or kept float32) array of the expected shape.

    Parameters
    ----------
    data : array-like
        The samples. Univariate detectors take shape ``(n,)`` or ``(n, 1)``;
        multivariate ones take ``(n, d)``.
    role : str
        ``"reference"`` or ``"current"``, used in error messages.
    shape : {"univariate", "multivariate"}
        What the detector expects.
    min_samples : int
        Fewest rows accepted.
    keep_float32 : bool
        Return float32 input as is instead of a float64 copy (large embedding arrays).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` for univariate, ``(n, d)`` for multivariate; float64 unless
        ``keep_float32`` and the input was float32.

    Raises
    ------
    InvalidInputError
        Non-numeric, wrong ``ndim``, too few samples, or NaN/inf values.

    Examples
    --------
    >>> check_samples([[1.0], [2.0]], role="reference", shape="univariate")
    array([1., 2.])
    >>> check_samples([1.0, float("nan")], role="current", shape="univariate")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: current contains 1 non-finite value ... first at row 1
    """
    keep = keep_float32 and isinstance(data, np.ndarray) and data.dtype == np.float32
    arr: npt.NDArray[np.floating[Any]]
    try:
        arr = np.asarray(data, dtype=np.float32) if keep else np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{role} is not a numeric array: {exc}") from exc
    if shape == "univariate":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InvalidInputError(
                f"{role} must be 1-D (n,) or (n, 1) for a univariate detector, "
                f"got shape {arr.shape}"
            )
    elif arr.ndim != 2:
        raise InvalidInputError(
            f"{role} must be 2-D (n_samples, n_features) for a multivariate detector, "
            f"got shape {arr.shape}"
        )
    n = arr.shape[0]
    if n == 0:
        raise InvalidInputError(f"{role} is empty (0 samples)")
    if n < min_samples:
        raise InvalidInputError(f"{role} has {n} samples, fewer than the {min_samples} needed")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InvalidInputError(f"{role} has 0 features")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = ~finite if arr.ndim == 1 else ~finite.all(axis=1)
        count = int((~finite).sum())
        first = int(np.flatnonzero(bad)[0])
        noun = "value" if count == 1 else "values"
        raise InvalidInputError(
            f"{role} contains {count} non-finite {noun} (NaN or inf), first at row {first}"
        )
    return arr


def check_groups(groups: npt.ArrayLike, *, role: str, n_samples: int) -> npt.NDArray[np.intp]:
    """Return the group code ``0 .. G - 1`` of each row from its group label.

    Labels are any 1-D integers or strings (image ids, for example), one per row of
    ``role``; equal labels are one group, numbered in order of first appearance, so
    renaming the labels changes nothing.

    Parameters
    ----------
    groups : array-like
        One label per row.
    role : str
        ``"reference"`` or ``"current"``, used in error messages.
    n_samples : int
        Rows of the samples the labels belong to.

    Returns
    -------
    numpy.ndarray
        ``(n_samples,)`` integer codes; ``codes.max() + 1`` is the number of groups.

    Raises
    ------
    InvalidInputError
        Labels that are not 1-D, one per row, integers or strings.

    Examples
    --------
    >>> check_groups([7, 3, 7, 9], role="reference", n_samples=4)
    array([0, 1, 0, 2])
    >>> check_groups([1, 2], role="current", n_samples=3)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: current groups has 2 labels but current has 3 rows
    """
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise InvalidInputError(f"{role} groups must be 1-D (one label per row), got {arr.shape}")
    if arr.size != n_samples:
        raise InvalidInputError(
            f"{role} groups has {arr.size} labels but {role} has {n_samples} rows"
        )
    if arr.dtype.kind not in "iuUS":
        raise InvalidInputError(
            f"{role} groups must be integer or string labels, got dtype {arr.dtype}"
        )
    _, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
    # Number groups in order of first appearance: renaming labels changes nothing.
    order = np.empty(first.size, dtype=np.intp)
    order[np.argsort(first, kind="stable")] = np.arange(first.size)
    codes: npt.NDArray[np.intp] = order[inverse.ravel()]
    return codes
