"""The typed result every drift detector returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class DriftResult:
    """Outcome of comparing one current window with a fitted reference.

    Attributes
    ----------
    detector : str
        Name of the detector that produced the result (``Detector.name``).
    feature : str
        Name of the monitored feature, as given to the detector.
    statistic : float
        Observed value of the detector's statistic (larger means more different).
    threshold : float
        Critical value of the statistic: the ``1 - alpha`` quantile of the permutation
        null distribution computed for these sample sizes (for detectors that aggregate
        several components, the value at which one component alone raises the alarm).
    p_value : float or None
        Permutation p-value ``(k + 1) / (n + 1)``; ``None`` for detectors without one.
    drift_detected : bool
        ``p_value <= alpha`` (or ``statistic > threshold`` where there is no p-value).
    n_reference : int
        Number of reference samples (rows: images, or objects of a per-object check).
    n_current : int
        Number of current samples.
    details : Mapping[str, float]
        Extra named numbers (both KL directions, per-component aggregates, bandwidth...).
        Read-only.
    n_reference_groups, n_current_groups : int or None
        Number of groups (the sampled units, such as images) behind the rows when the
        detector was given groups and calibrated by permuting them; ``None`` otherwise.

    Examples
    --------
    >>> r = DriftResult("ks", "brightness", 0.31, 0.2, 0.004, True, 100, 50)
    >>> r.drift_detected, dict(r.details), r.n_current_groups
    (True, {}, None)
    """

    detector: str
    feature: str
    statistic: float
    threshold: float
    p_value: float | None
    drift_detected: bool
    n_reference: int
    n_current: int
    details: Mapping[str, float] = field(default_factory=dict)
    n_reference_groups: int | None = None
    n_current_groups: int | None = None

    def __post_init__(self) -> None:
        # Freeze the mapping too, so a stored result cannot be edited in place.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
