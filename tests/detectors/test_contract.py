"""One contract every detector must honour (River / scikit-learn style check suite)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from detectors import (
    CATEGORICAL_DETECTORS,
    MULTIVARIATE_DETECTORS,
    UNIVARIATE_DETECTORS,
    BaseDetector,
    Detector,
    DomainClassifierDetector,
    DriftResult,
    MMDDetector,
)
from detectors._typing import Float64Array
from monitor.errors import InvalidInputError, NotFittedError
from tests.support.detector_cases import every_detector

ALL = UNIVARIATE_DETECTORS + MULTIVARIATE_DETECTORS + CATEGORICAL_DETECTORS
DIM = 6


def make(cls: type[BaseDetector], params: dict[str, Any], **kwargs: Any) -> BaseDetector:
    return cls(**{"n_permutations": 199, "random_state": 7, **params, **kwargs})


def sample(
    cls: type[BaseDetector], rng: np.random.Generator, n: int, shift: float = 0.0
) -> Float64Array:
    if cls in UNIVARIATE_DETECTORS:
        return rng.normal(shift, 1.0, size=n)
    if cls in CATEGORICAL_DETECTORS:  # category codes; a shift moves mass to category 0
        p = np.full(5, 1.0) + np.array([4.0 * shift, 0, 0, 0, 0])
        return rng.choice(5, size=n, p=p / p.sum()).astype(float)
    x = rng.normal(size=(n, DIM))
    x[:, 0] += shift
    return x


@every_detector(ALL)
def test_follows_the_protocol_and_fit_returns_self(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    det = make(cls, params)
    assert isinstance(det, Detector)
    assert det.fit(sample(cls, np.random.default_rng(0), 80)) is det
    assert det.n_reference_ == 80
    assert isinstance(det.name, str) and det.name


@every_detector(ALL)
def test_score_before_fit_raises(cls: type[BaseDetector], params: dict[str, Any]) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        make(cls, params).score(sample(cls, np.random.default_rng(0), 50))


@every_detector(ALL)
def test_result_is_a_frozen_drift_result_with_sizes(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(1)
    result = (
        make(cls, params, feature="brightness")
        .fit(sample(cls, rng, 90))
        .score(sample(cls, rng, 60))
    )
    assert isinstance(result, DriftResult)
    assert (result.detector, result.feature) == (cls.name, "brightness")
    assert (result.n_reference, result.n_current) == (90, 60)
    assert result.p_value is not None and 0.0 < result.p_value <= 1.0
    assert result.drift_detected == (result.p_value <= 0.05)
    with pytest.raises(FrozenInstanceError):
        result.statistic = 0.0  # type: ignore[misc]  # frozen: the assignment must fail


@every_detector(ALL)
def test_deterministic_under_a_seed(cls: type[BaseDetector], params: dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    ref, cur = sample(cls, rng, 70), sample(cls, rng, 50, shift=0.3)
    first = make(cls, params, random_state=3).fit(ref).score(cur)
    again = make(cls, params, random_state=3).fit(ref).score(cur)
    assert first == again
    # Scoring twice with the same fitted detector does not consume hidden state either.
    det = make(cls, params, random_state=3).fit(ref)
    assert det.score(cur) == det.score(cur) == first


@every_detector(ALL)
def test_no_shift_stays_under_threshold_at_the_configured_rate(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    # 20 independent A/A windows at alpha = 0.05: 5 or more alarms has probability 0.3%.
    alarms = 0
    for trial in range(20):
        rng = np.random.default_rng(100 + trial)
        det = make(cls, params, random_state=trial).fit(sample(cls, rng, 60))
        alarms += det.score(sample(cls, rng, 40)).drift_detected
    assert alarms <= 4


@every_detector(ALL)
def test_clear_shift_is_detected(cls: type[BaseDetector], params: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    det = make(cls, params).fit(sample(cls, rng, 150))
    result = det.score(sample(cls, rng, 100, shift=1.5))
    assert result.drift_detected
    assert result.statistic > result.threshold


def _bad_inputs(cls: type[BaseDetector]) -> list[tuple[Any, str]]:
    good = sample(cls, np.random.default_rng(0), 30)
    with_nan = np.array(good, dtype=float)
    with_nan.flat[7] = np.nan
    with_inf = np.array(good, dtype=float)
    with_inf.flat[3] = np.inf
    wrong_ndim = np.zeros((30, 2, 2)) if cls in MULTIVARIATE_DETECTORS else np.zeros((30, 3))
    return [
        (with_nan, "non-finite"),
        (with_inf, "non-finite"),
        (good[:0], "empty"),
        (wrong_ndim, "shape"),
        (["a", "b", "c"], "numeric"),
    ]


@every_detector(ALL)
def test_bad_input_raises_an_error_that_names_it(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    for bad, message in _bad_inputs(cls):
        with pytest.raises(InvalidInputError, match=message):
            make(cls, params).fit(bad)
        det = make(cls, params).fit(sample(cls, np.random.default_rng(0), 30))
        with pytest.raises(InvalidInputError, match=message):
            det.score(bad)


@every_detector(MULTIVARIATE_DETECTORS)
def test_feature_count_mismatch_names_both_counts(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    det = make(cls, params).fit(np.random.default_rng(0).normal(size=(30, DIM)))
    with pytest.raises(InvalidInputError, match=f"3 features but the reference had {DIM}"):
        det.score(np.zeros((30, 3)))


BAD_HYPERPARAMETERS: list[tuple[str, Any]] = [
    ("alpha", 0.0),
    ("alpha", 1.5),
    ("n_permutations", 0),
    ("n_permutations", 2.5),
    ("random_state", -1),
    ("feature", ""),
]


@every_detector(ALL)
@pytest.mark.parametrize(("param", "value"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameter_raises_naming_it(
    cls: type[BaseDetector], params: dict[str, Any], param: str, value: Any
) -> None:
    with pytest.raises(InvalidInputError, match=param):
        make(cls, params, **{param: value})


SPECIFIC: list[tuple[Callable[..., BaseDetector], str, Any]] = [
    (UNIVARIATE_DETECTORS[0], "n_bins", 1),
    (UNIVARIATE_DETECTORS[1], "direction", "both"),
    (UNIVARIATE_DETECTORS[1], "smoothing", 0.0),
    (UNIVARIATE_DETECTORS[2], "epsilon", -1.0),
    (MULTIVARIATE_DETECTORS[0], "n_components", 0),
    (MULTIVARIATE_DETECTORS[0], "divergence", "hellinger"),
    (MULTIVARIATE_DETECTORS[0], "correction", "holm"),
    (MMDDetector, "bandwidth", -2.0),
    (MMDDetector, "device", "tpu"),
    (DomainClassifierDetector, "n_splits", 1),
    (DomainClassifierDetector, "C", float("nan")),
]


@pytest.mark.parametrize(("cls", "param", "value"), SPECIFIC)
def test_detector_specific_hyperparameters_are_validated(
    cls: Callable[..., BaseDetector], param: str, value: Any
) -> None:
    with pytest.raises(InvalidInputError, match=param):
        cls(**{param: value})


def grouped_sample(
    cls: type[BaseDetector],
    rng: np.random.Generator,
    n_groups: int,
    rho: float = 0.8,
    shift: float = 0.0,
) -> tuple[Float64Array, npt.NDArray[np.int64]]:
    """Rows in groups of 1 to 8 sharing a group effect (intra-group correlation ``rho``)."""
    sizes = rng.integers(1, 9, size=n_groups)
    groups = np.repeat(np.arange(n_groups) * 10 + 3, sizes)  # labels need not be 0..G-1
    index = np.repeat(np.arange(n_groups), sizes)
    if cls in CATEGORICAL_DETECTORS:  # each group has its own class mix
        p = np.full(5, 1.0) + np.array([4.0 * shift, 0, 0, 0, 0])
        mixes = rng.dirichlet(p / p.sum() * (1.0 / rho - 1.0), size=n_groups)
        codes = [rng.choice(5, size=k, p=mix) for k, mix in zip(sizes, mixes, strict=True)]
        return np.concatenate(codes).astype(float), groups
    shape = (index.size,) if cls in UNIVARIATE_DETECTORS else (index.size, DIM)
    effect = rng.normal(size=(n_groups, *shape[1:]))[index]
    x = np.sqrt(rho) * effect + np.sqrt(1.0 - rho) * rng.normal(size=shape)
    if x.ndim == 1:
        x += shift
    else:
        x[:, 0] += shift
    return x, groups


@every_detector(ALL)
def test_grouped_result_counts_rows_and_groups(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(4)
    ref, ref_groups = grouped_sample(cls, rng, 30)
    cur, cur_groups = grouped_sample(cls, rng, 20)
    result = make(cls, params).fit(ref, groups=ref_groups).score(cur, groups=cur_groups)
    assert (result.n_reference, result.n_current) == (ref.shape[0], cur.shape[0])
    assert (result.n_reference_groups, result.n_current_groups) == (30, 20)
    assert result.p_value is not None and 0.0 < result.p_value <= 1.0
    assert result.drift_detected == (result.p_value <= 0.05)
    plain = make(cls, params).fit(ref).score(cur)
    assert (plain.n_reference_groups, plain.n_current_groups) == (None, None)


@every_detector(ALL)
def test_grouped_is_deterministic_and_labels_are_per_side(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(5)
    ref, ref_groups = grouped_sample(cls, rng, 25)
    cur, cur_groups = grouped_sample(cls, rng, 20, shift=0.3)
    first = make(cls, params).fit(ref, ref_groups).score(cur, cur_groups)
    det = make(cls, params).fit(ref, ref_groups)
    assert det.score(cur, cur_groups) == det.score(cur, cur_groups) == first
    # Labels name groups within one side: the same labels on both sides, or strings,
    # give the very same test.
    renamed = make(cls, params).fit(ref, ref_groups.astype(str)).score(cur, cur_groups + 10**6)
    assert renamed == first


@every_detector(ALL)
def test_grouped_no_shift_stays_under_threshold_with_correlated_rows(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    # 20 A/A windows whose rows share strong group effects (rho = 0.8): permuting whole
    # groups keeps the rate at alpha, so 5 or more alarms has probability 0.3%.
    alarms = 0
    for trial in range(20):
        rng = np.random.default_rng(200 + trial)
        ref, ref_groups = grouped_sample(cls, rng, 40)
        cur, cur_groups = grouped_sample(cls, rng, 25)
        det = make(cls, params, random_state=trial).fit(ref, ref_groups)
        alarms += det.score(cur, cur_groups).drift_detected
    assert alarms <= 4


@every_detector(ALL)
def test_grouped_clear_shift_is_detected(cls: type[BaseDetector], params: dict[str, Any]) -> None:
    rng = np.random.default_rng(6)
    ref, ref_groups = grouped_sample(cls, rng, 60, rho=0.3)
    cur, cur_groups = grouped_sample(cls, rng, 40, rho=0.3, shift=1.5)
    result = make(cls, params).fit(ref, ref_groups).score(cur, cur_groups)
    assert result.drift_detected
    assert result.statistic > result.threshold


@every_detector(ALL)
def test_groups_on_one_side_only_are_refused(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(7)
    ref, ref_groups = grouped_sample(cls, rng, 20)
    cur, cur_groups = grouped_sample(cls, rng, 20)
    with pytest.raises(InvalidInputError, match="given for the reference but not for the current"):
        make(cls, params).fit(ref, ref_groups).score(cur)
    with pytest.raises(InvalidInputError, match="given for the current but not for the reference"):
        make(cls, params).fit(ref).score(cur, cur_groups)


@every_detector(ALL)
def test_bad_groups_raise_an_error_that_names_them(
    cls: type[BaseDetector], params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(8)
    ref, ref_groups = grouped_sample(cls, rng, 20)
    cur, cur_groups = grouped_sample(cls, rng, 20)
    bad: list[tuple[Any, str]] = [
        (ref_groups[:-1], f"reference groups has {ref.shape[0] - 1} labels"),
        (ref_groups.reshape(-1, 1), "1-D"),
        (ref_groups.astype(float), "integer or string labels"),
    ]
    for groups, message in bad:
        with pytest.raises(InvalidInputError, match=message):
            make(cls, params).fit(ref, groups)
    det = make(cls, params).fit(ref, ref_groups)
    with pytest.raises(InvalidInputError, match=f"current groups has {cur.shape[0] + 1} labels"):
        det.score(cur, np.r_[cur_groups, 1])


def test_package_imports_without_torch() -> None:
    import subprocess
    import sys

    code = "import sys, detectors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
