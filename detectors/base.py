"""The detector protocol and the base class that runs the steps every detector shares.

A concrete detector fills in :meth:`BaseDetector._fit` (optional) and
:meth:`BaseDetector._score`; validation, the fitted check, seeding and the construction
of :class:`~detectors.result.DriftResult` live here (Alibi-Detect style).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from detectors._validation import Shape, check_groups, check_samples
from detectors.errors import InvalidInputError, NotFittedError
from detectors.permutation import PooledGroups
from detectors.result import DriftResult


@runtime_checkable
class Detector(Protocol):
    """What the drift job needs from a detector."""

    name: str

    def fit(self, reference: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> Self:
        """Learn the reference state (attributes ending in ``_``) and return ``self``."""
        ...

    def score(self, current: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> DriftResult:
        """Compare ``current`` with the fitted reference."""
        ...


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` if it is a false-alarm rate strictly between 0 and 1.

    Examples
    --------
    >>> check_alpha(0.05)
    0.05
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be a float in (0, 1), got {alpha!r}")
    return float(alpha)


def check_int(value: int, name: str, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum``; otherwise raise naming ``name``.

    Examples
    --------
    >>> check_int(10, "n_bins", 2)
    10
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(value: float, name: str) -> float:
    """Return ``value`` if it is a finite float > 0; otherwise raise naming ``name``.

    Examples
    --------
    >>> check_positive_float(0.5, "smoothing")
    0.5
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a finite float > 0, got {value!r}")
    return float(value)


def check_random_state(random_state: int | None) -> int | None:
    """Return ``random_state`` if it is ``None`` or a non-negative int.

    Examples
    --------
    >>> check_random_state(0)
    0
    """
    if random_state is None:
        return None
    return check_int(random_state, "random_state", 0)


class BaseDetector(ABC):
    """Shared steps: validate hyperparameters and data, seed, build the result.

    Rows are exchangeable samples unless ``groups`` are given to :meth:`fit` and
    :meth:`score`: then each row carries the label of the unit that was sampled (the
    image an object lies on), rows of one group may be correlated, and the calibration
    permutes whole groups between reference and current (cluster permutation), so the
    false-alarm rate stays ``alpha`` when groups, not rows, are exchangeable.

    Parameters
    ----------
    alpha : float
        False-alarm rate the permutation calibration targets; drift is declared when the
        permutation p-value is ``<= alpha``.
    n_permutations : int
        Permutations of the pooled reference + current sample drawn to calibrate.
    random_state : int or None
        Seed. With an int every ``score`` call on the same data gives the same result.
    feature : str
        Name of the monitored feature, copied into each :class:`DriftResult`.
    """

    name: ClassVar[str]
    input_shape: ClassVar[Shape]
    min_samples: ClassVar[int] = 2
    keeps_float32: ClassVar[bool] = False
    """Whether float32 input is kept as float32 (no float64 copy of large references)."""

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        n_permutations: int = 1000,
        random_state: int | None = 0,
        feature: str = "value",
    ) -> None:
        self.alpha = check_alpha(alpha)
        self.n_permutations = check_int(n_permutations, "n_permutations", 1)
        self.random_state = check_random_state(random_state)
        if not isinstance(feature, str) or not feature:
            raise InvalidInputError(f"feature must be a non-empty str, got {feature!r}")
        self.feature = feature

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Yield the hyperparameters the shared detector contract suite should try.

        Each yielded mapping is passed to the constructor, on top of the suite's own
        ``n_permutations`` and ``random_state``, so a detector whose defaults do not suit
        a test (a GPU device, folds that need more samples) says so here instead of the
        suite keeping a table of special cases (River's ``_unit_test_params``).

        Yields
        ------
        dict of str to Any
            Keyword arguments for ``cls(...)``; the default is one empty mapping.

        Examples
        --------
        >>> from detectors import JensenShannonDetector, MMDDetector
        >>> list(JensenShannonDetector._unit_test_params())
        [{}]
        >>> list(MMDDetector._unit_test_params())
        [{'device': 'cpu'}]
        """
        yield {}

    def fit(self, reference: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> Self:
        """Validate and store the reference sample, then learn what the detector needs.

        Parameters
        ----------
        reference : array-like
            Reference samples (see the class for the expected shape).
        groups : array-like or None
            One group label (integer or string) per reference row, for example the id
            of the image each object lies on; ``None`` when rows are independent.
            Labels only name groups within the reference.

        Returns
        -------
        Self
            The fitted detector.
        """
        ref = self._check(reference, "reference")
        codes = (
            None if groups is None else check_groups(groups, role="reference", n_samples=len(ref))
        )
        self.n_reference_ = int(ref.shape[0])
        self.n_features_in_ = 1 if ref.ndim == 1 else int(ref.shape[1])
        self.reference_groups_ = codes
        self._fit(ref)
        self.reference_ = ref
        return self

    def score(self, current: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> DriftResult:
        """Test whether ``current`` comes from the reference distribution.

        Parameters
        ----------
        current : array-like
            Current samples, same number of features as the reference.
        groups : array-like or None
            One group label per current row; given exactly when :meth:`fit` had groups.
            Labels only name groups within the current sample (a label that also occurs
            in the reference is still another group).

        Returns
        -------
        DriftResult
            Statistic, calibrated threshold, permutation p-value and decision; with
            groups, also the number of groups on each side.

        Raises
        ------
        NotFittedError
            If :meth:`fit` was not called.
        InvalidInputError
            For NaN/inf, empty, wrongly shaped or mismatched input, or groups given on
            one side only.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(reference) first")
        cur = self._check(current, "current")
        n_features = 1 if cur.ndim == 1 else int(cur.shape[1])
        if n_features != self.n_features_in_:
            raise InvalidInputError(
                f"current has {n_features} features but the reference had {self.n_features_in_}"
            )
        rng = np.random.default_rng(self.random_state)
        if groups is None and self.reference_groups_ is None:
            return self._score(cur, rng)
        if groups is None or self.reference_groups_ is None:
            given, missing = (
                ("reference", "current") if groups is None else ("current", "reference")
            )
            raise InvalidInputError(
                f"groups were given for the {given} but not for the {missing}; "
                "pass groups to both fit and score, or to neither"
            )
        codes = check_groups(groups, role="current", n_samples=len(cur))
        return self._score_grouped(cur, PooledGroups(self.reference_groups_, codes), rng)

    def _check(self, data: npt.ArrayLike, role: str) -> npt.NDArray[np.float64]:
        # Float32 stays float32 only for detectors that opt in and handle it themselves.
        checked: npt.NDArray[np.float64] = check_samples(  # type: ignore[assignment]
            data,
            role=role,
            shape=self.input_shape,
            min_samples=self.min_samples,
            keep_float32=self.keeps_float32,
        )
        return checked

    def _fit(self, reference: npt.NDArray[np.float64]) -> None:  # noqa: B027 - optional hook
        """Learn detector-specific reference state (default: nothing)."""

    @abstractmethod
    def _score(self, current: npt.NDArray[np.float64], rng: np.random.Generator) -> DriftResult:
        """Compute the statistic and its calibrated threshold for validated input."""

    @abstractmethod
    def _score_grouped(
        self, current: npt.NDArray[np.float64], groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        """Compute the statistic and a threshold calibrated by permuting whole groups."""

    def _result(
        self,
        *,
        statistic: float,
        threshold: float,
        p_value: float,
        n_current: int,
        details: Mapping[str, float] | None = None,
        groups: PooledGroups | None = None,
    ) -> DriftResult:
        return DriftResult(
            detector=self.name,
            feature=self.feature,
            statistic=float(statistic),
            threshold=float(threshold),
            p_value=float(p_value),
            drift_detected=bool(p_value <= self.alpha),
            n_reference=self.n_reference_,
            n_current=int(n_current),
            details=dict(details or {}),
            n_reference_groups=None if groups is None else groups.n_reference,
            n_current_groups=None if groups is None else groups.n_current,
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"
