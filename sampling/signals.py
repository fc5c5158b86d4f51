"""The signals a sample is queued by, their default weights and how they combine.

Every signal is a score in [0, 1] where higher means "label me", and NaN means "not
available for this sample" (no shadow row, no embedding, no instance), never an error:

==================  ======  ===========================================================
signal              weight  rule (module)
==================  ======  ===========================================================
uncertainty_max     0.25    most doubtful instance of the image (:mod:`.uncertainty`)
uncertainty_mean    0.10    mean instance doubt of the image (:mod:`.uncertainty`)
disagreement        0.25    shadow disagreement with the reference (:mod:`.disagreement`)
image_novelty       0.20    image embedding vs the reference's (:mod:`.novelty`)
instance_novelty    0.10    most novel instance within its class (:mod:`.novelty`)
drift               0.10    captured in a window whose drift check fired
                            (:mod:`.drift_context`)
==================  ======  ===========================================================

**Combination.** A sample's priority is the weighted mean of the signals it has::

    priority = sum(w_s * x_s for available s) / sum(w_s for available s)

so a missing signal neither counts as 0 nor blocks the others (the weights of the
available ones are renormalised); a sample with no signal at all gets 0. The reason
shown beside a queued item is the signal with the largest ``w_s * x_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from sampling._checks import as_vector
from sampling._typing import FloatArray
from sampling.errors import InvalidSignalError

SIGNALS: Final = (
    "uncertainty_max",
    "uncertainty_mean",
    "disagreement",
    "image_novelty",
    "instance_novelty",
    "drift",
)
"""Every signal name, in the order ties between reasons are broken."""

DEFAULT_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "uncertainty_max": 0.25,
        "uncertainty_mean": 0.10,
        "disagreement": 0.25,
        "image_novelty": 0.20,
        "instance_novelty": 0.10,
        "drift": 0.10,
    }
)
"""The default weight of each signal (they sum to 1; only their ratios matter)."""

NO_SIGNAL: Final = "none"
"""The reason of a sample that has no signal at all."""


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Return the weights as a dict, raising if a name is unknown or a weight is bad.

    Examples
    --------
    >>> check_weights({"drift": 2})
    {'drift': 2.0}
    >>> check_weights({"drift": 1.0, "novelty": 1.0})
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: unknown signal name(s) in weights: 'novelty'; known: uncertainty_max, uncertainty_mean, disagreement, image_novelty, instance_novelty, drift
    """
    _check_names(weights, "weights")
    out: dict[str, float] = {}
    for name, weight in weights.items():
        try:
            value = float(weight)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(weight, bool) or not np.isfinite(value) or value < 0.0:
            raise InvalidSignalError(f"weight of {name!r} must be finite and >= 0, got {weight!r}")
        out[name] = value
    return out


def _check_names(names: Mapping[str, object], role: str) -> None:
    unknown = [name for name in names if name not in SIGNALS]
    if unknown:
        raise InvalidSignalError(
            f"unknown signal name(s) in {role}: {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(SIGNALS)}"
        )


def check_signals(
    signals: Mapping[str, npt.ArrayLike], n: int | None = None
) -> dict[str, FloatArray]:
    """Return the signals as float64 vectors of one length, values in [0, 1] or NaN.

    Examples
    --------
    >>> check_signals({"drift": [1.0, 0.0], "disagreement": [0.5]})
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: disagreement has 1 values, expected 2
    """
    _check_names(signals, "signals")
    out: dict[str, FloatArray] = {}
    for name, values in signals.items():
        out[name] = as_vector(values, name=name, n=n, allow_nan=True, unit_interval=True)
        n = out[name].shape[0]
    return out


def _contributions(
    signals: Mapping[str, npt.ArrayLike], weights: Mapping[str, float]
) -> tuple[list[str], FloatArray, FloatArray]:
    """Names, ``(S, n)`` weighted values (NaN where missing) and ``(S, n)`` weights."""
    checked = check_signals(signals)
    w = check_weights(weights)
    names: list[str] = [name for name in SIGNALS if name in checked]
    n = checked[names[0]].shape[0] if names else 0
    values = np.array([checked[name] for name in names]).reshape(len(names), n)
    weight = np.array([w.get(name, 0.0) for name in names])[:, None]
    available = ~np.isnan(values) & (weight > 0.0)
    weighted: FloatArray = np.where(available, values * weight, np.nan)
    weights_used: FloatArray = np.where(available, weight, 0.0)
    return names, weighted, weights_used


def combine_signals(
    signals: Mapping[str, npt.ArrayLike], weights: Mapping[str, float]
) -> FloatArray:
    """Priority of each sample: the weighted mean of its available signals.

    Parameters
    ----------
    signals : Mapping[str, array-like]
        Signal name (one of :data:`SIGNALS`) to ``(n,)`` values in [0, 1], NaN where the
        sample lacks that signal. An empty mapping gives an empty result.
    weights : Mapping[str, float]
        Non-negative weight per signal name; a signal without a weight (or weight 0)
        does not count.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` priority in [0, 1]; 0 for a sample with no (weighted) signal.

    Raises
    ------
    InvalidSignalError
        An unknown signal name (in either mapping), a negative or NaN weight, vectors of
        different lengths, values outside [0, 1].

    Examples
    --------
    >>> nan = float("nan")
    >>> signals = {"uncertainty_max": [0.8, nan, nan], "drift": [0.0, 1.0, nan]}
    >>> np.round(combine_signals(signals, {"uncertainty_max": 3.0, "drift": 1.0}), 3).tolist()
    [0.6, 1.0, 0.0]
    """
    _, weighted, weight = _contributions(signals, weights)
    total = weight.sum(axis=0)
    sums = np.nansum(weighted, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        priority = np.where(total > 0.0, sums / np.where(total > 0.0, total, 1.0), 0.0)
    out: FloatArray = np.clip(priority, 0.0, 1.0)
    return out


def main_reason(signals: Mapping[str, npt.ArrayLike], weights: Mapping[str, float]) -> list[str]:
    """Name the signal contributing most (largest ``weight * value``) to each priority.

    Ties go to the signal listed first in :data:`SIGNALS`; a sample with no weighted
    signal gets ``"none"``.

    Examples
    --------
    >>> nan = float("nan")
    >>> signals = {"uncertainty_max": [0.8, 0.1, nan], "drift": [0.0, 1.0, nan]}
    >>> main_reason(signals, {"uncertainty_max": 3.0, "drift": 1.0})
    ['uncertainty_max', 'drift', 'none']
    """
    names, weighted, weight = _contributions(signals, weights)
    if not names:
        return []
    filled = np.where(np.isnan(weighted), -np.inf, weighted)
    best = np.argmax(filled, axis=0)  # argmax returns the first of equal values
    has: list[bool] = np.asarray((weight > 0.0).any(axis=0)).tolist()
    return [names[b] if ok else NO_SIGNAL for b, ok in zip(best.tolist(), has, strict=True)]


__all__ = [
    "DEFAULT_WEIGHTS",
    "NO_SIGNAL",
    "SIGNALS",
    "check_signals",
    "check_weights",
    "combine_signals",
    "main_reason",
]
