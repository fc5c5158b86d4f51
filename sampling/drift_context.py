"""Drift context: whether a sample was captured while a drift check had fired.

**Rule.** 1.0 when the sample's capture time lies in at least one window ``[start, end)``
whose drift check fired, else 0.0. A sample captured while the input world was changing
is worth a label even when the model looks sure of itself.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sampling._checks import as_vector
from sampling._typing import FloatArray
from sampling.errors import InvalidSignalError


def in_fired_windows(times: npt.ArrayLike, windows: npt.ArrayLike) -> FloatArray:
    """1.0 for each time inside a fired window, else 0.0.

    Parameters
    ----------
    times : array-like
        ``(n,)`` capture times, epoch seconds.
    windows : array-like
        ``(m, 2)`` ``[start, end)`` of the windows whose drift check fired, epoch seconds;
        ``m`` may be 0. Windows may overlap.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` of 0.0 and 1.0.

    Raises
    ------
    InvalidSignalError
        NaN or inf times, windows not of shape ``(m, 2)``, non-finite, or ending before
        they start.

    Examples
    --------
    >>> in_fired_windows([5.0, 10.0, 15.0, 30.0], [[0.0, 10.0], [12.0, 20.0]]).tolist()
    [1.0, 0.0, 1.0, 0.0]
    """
    t = as_vector(times, name="times")
    try:
        w = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"windows must be an (m, 2) array of [start, end): {exc}") from exc
    if np.asarray(windows).size and np.asarray(windows).shape[-1] != 2:
        raise InvalidSignalError(f"windows must have shape (m, 2), got {np.shape(windows)}")
    if not np.isfinite(w).all():
        row = int(np.flatnonzero(~np.isfinite(w).all(axis=1))[0])
        raise InvalidSignalError(f"windows row {row} is not finite: {w[row].tolist()}")
    backwards = w[:, 1] < w[:, 0]
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0])
        raise InvalidSignalError(f"windows row {row} ends before it starts: {w[row].tolist()}")
    w = w[w[:, 1] > w[:, 0]]  # empty windows hold nothing
    if w.shape[0] == 0:
        return np.zeros(t.shape[0])
    # Merge overlapping windows, then one binary search per time.
    w = w[np.argsort(w[:, 0], kind="stable")]
    reach = np.maximum.accumulate(w[:, 1])
    starts_new = np.r_[True, w[1:, 0] > reach[:-1]]
    group = np.cumsum(starts_new) - 1
    starts = w[starts_new, 0]
    ends = np.zeros(starts.shape[0])
    np.maximum.at(ends, group, w[:, 1])
    slot = np.searchsorted(starts, t, side="right") - 1
    inside = (slot >= 0) & (t < ends[np.maximum(slot, 0)])
    return inside.astype(np.float64)


__all__ = ["in_fired_windows"]
