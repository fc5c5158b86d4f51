"""Input checks shared by the sampling functions; every error names the bad value."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sampling._typing import FloatArray, IntArray
from sampling.errors import InvalidSignalError


def check_int(value: Any, *, name: str, minimum: int) -> int:
    """Return ``value`` as an int, raising if it is not an integer ``>= minimum``.

    Examples
    --------
    >>> check_int(3, name="k", minimum=1)
    3
    >>> check_int(0, name="k", minimum=1)
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: k must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidSignalError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    value: Any, *, name: str, low: float, high: float = float("inf"), open_low: bool = False
) -> float:
    """Return ``value`` as a finite float in ``[low, high]`` (``(low, high]`` when ``open_low``).

    Examples
    --------
    >>> check_float(0.5, name="threshold", low=0.0, high=1.0)
    0.5
    >>> check_float(-1.0, name="duplicate_distance", low=0.0)
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: duplicate_distance must be a finite number in [0.0, inf), got -1.0
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    below = number <= low if open_low else number < low
    if isinstance(value, bool) or not np.isfinite(number) or below or number > high:
        interval = f"{'(' if open_low else '['}{low}, {high}{']' if np.isfinite(high) else ')'}"
        raise InvalidSignalError(f"{name} must be a finite number in {interval}, got {value!r}")
    return number


def as_vector(
    values: npt.ArrayLike,
    *,
    name: str,
    n: int | None = None,
    allow_nan: bool = False,
    unit_interval: bool = False,
) -> FloatArray:
    """Return ``values`` as a 1-D float64 array, checked.

    Parameters
    ----------
    values : array-like
        The vector.
    name : str
        Its name in error messages.
    n : int, optional
        The length it must have.
    allow_nan : bool
        Whether NaN ("no signal") is accepted; infinities never are.
    unit_interval : bool
        Whether the non-NaN values must lie in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64.

    Raises
    ------
    InvalidSignalError
        Not numeric, not 1-D, the wrong length, NaN where not allowed, infinite, or
        outside ``[0, 1]``; the message names the first bad row and its value.

    Examples
    --------
    >>> as_vector([0.2, float("nan")], name="disagreement", allow_nan=True, unit_interval=True)
    array([0.2, nan])
    >>> as_vector([0.2, 1.5], name="scores", unit_interval=True)
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: scores must lie in [0, 1]; row 1 is 1.5
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"{name} is not a numeric array: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidSignalError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InvalidSignalError(f"{name} has {arr.shape[0]} values, expected {n}")
    nan = np.isnan(arr)
    if not allow_nan and nan.any():
        row = int(np.flatnonzero(nan)[0])
        raise InvalidSignalError(f"{name} contains NaN, first at row {row}")
    if np.isinf(arr).any():
        row = int(np.flatnonzero(np.isinf(arr))[0])
        raise InvalidSignalError(f"{name} contains an infinite value at row {row}")
    if unit_interval:
        outside = ~nan & ((arr < 0.0) | (arr > 1.0))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise InvalidSignalError(f"{name} must lie in [0, 1]; row {row} is {float(arr[row])!r}")
    return arr


def as_counts(values: npt.ArrayLike, *, name: str, n: int | None = None) -> IntArray:
    """Return ``values`` as a 1-D int64 array of non-negative integers.

    Examples
    --------
    >>> as_counts([0, 2], name="n_production")
    array([0, 2])
    >>> as_counts([1, -1], name="n_production")
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: n_production must be non-negative integers; row 1 is -1
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidSignalError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InvalidSignalError(f"{name} has {arr.shape[0]} values, expected {n}")
    if (
        arr.size
        and arr.dtype.kind not in "iu"
        and (arr.dtype.kind != "f" or not np.array_equal(arr, np.round(arr)))
    ):
        raise InvalidSignalError(f"{name} must be integers, got dtype {arr.dtype}")
    ints = arr.astype(np.int64)
    negative = ints < 0
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise InvalidSignalError(
            f"{name} must be non-negative integers; row {row} is {int(ints[row])}"
        )
    return ints


def as_matrix(
    values: npt.ArrayLike, *, name: str, n: int | None = None, d: int | None = None
) -> npt.NDArray[np.float32]:
    """Return ``values`` as a finite 2-D float32 array (embeddings), checked.

    Examples
    --------
    >>> as_matrix([[0.0, 1.0]], name="reference").dtype
    dtype('float32')
    >>> as_matrix([[0.0, 1.0]], name="current", d=3)
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: current has 2 features, expected 3
    """
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"{name} is not a numeric array: {exc}") from exc
    if arr.ndim != 2:
        raise InvalidSignalError(f"{name} must be 2-D (n, d), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InvalidSignalError(f"{name} has {arr.shape[0]} rows, expected {n}")
    if d is not None and arr.shape[1] != d:
        raise InvalidSignalError(f"{name} has {arr.shape[1]} features, expected {d}")
    if arr.shape[1] == 0:
        raise InvalidSignalError(f"{name} has 0 features")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidSignalError(f"{name} contains NaN or inf, first at row {row}")
    return arr
