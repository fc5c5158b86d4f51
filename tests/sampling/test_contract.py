"""One contract every signal function and sampler honours (the detectors' suite, for sampling).

Each signal case builds valid seeded inputs of ``n`` samples and lists malformed
variants with the words its error must contain; every case then runs through the same
checks: output shape and dtype, values in [0, 1] or NaN (NaN only where the case says a
signal can be missing), determinism, inputs left unchanged, and validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from detectors.errors import SegmonError
from sampling import (
    DEFAULT_WEIGHTS,
    CandidateTable,
    InvalidSignalError,
    KNNNovelty,
    SelectionPolicy,
    combine_signals,
    image_disagreement,
    image_uncertainty,
    in_fired_windows,
    instance_novelty,
    instance_uncertainty,
    k_center_greedy,
    near_duplicates,
    select,
)
from sampling._typing import FloatArray
from sampling.errors import SamplingError

Kwargs = dict[str, Any]
Mutation = Callable[[Kwargs], Kwargs]


@dataclass(frozen=True)
class SignalCase:
    name: str
    make: Callable[[np.random.Generator, int], Kwargs]
    call: Callable[..., FloatArray]
    may_be_nan: bool = False
    bad: tuple[tuple[str, Mutation, str], ...] = field(default_factory=tuple)


def _with(key: str, value: Any) -> Mutation:
    return lambda kw: {**kw, key: value}


def _nan_at(key: str, row: int = 1) -> Mutation:
    def mutate(kw: Kwargs) -> Kwargs:
        arr = np.array(kw[key], dtype=float)
        arr.flat[row] = np.nan
        return {**kw, key: arr}

    return mutate


def _shorter(key: str) -> Mutation:
    return lambda kw: {**kw, key: np.asarray(kw[key])[:-1]}


def _uncertainty(rng: np.random.Generator, n: int) -> Kwargs:
    class_scores = rng.dirichlet(np.ones(4), n)
    class_scores[::3] = np.nan
    return {"scores": rng.random(n), "class_scores": class_scores, "threshold": 0.4}


def _image_uncertainty(rng: np.random.Generator, n: int) -> Kwargs:
    m = 3 * n
    return {
        "per_instance": rng.random(m),
        "image_index": rng.integers(0, n - 2, m),  # the last two images have none: NaN
        "n_images": n,
    }


def _disagreement(rng: np.random.Generator, n: int) -> Kwargs:
    matched = rng.integers(0, 5, n)
    po, ro = rng.integers(0, 3, n), rng.integers(0, 3, n)
    agreement = rng.random(n)
    agreement[::4] = np.nan
    return {
        "agreement": agreement,
        "production_only": po,
        "reference_only": ro,
        "class_disagreements": np.minimum(rng.integers(0, 3, n), matched),
        "n_production": matched + po,
        "n_reference": matched + ro,
    }


def _novelty(rng: np.random.Generator, n: int) -> Kwargs:
    return {"reference": rng.normal(size=(60, 5)), "current": rng.normal(0.5, 1.5, (n, 5))}


def _instance_novelty(rng: np.random.Generator, n: int) -> Kwargs:
    return {
        "reference": rng.normal(size=(60, 5)),
        "reference_classes": rng.integers(0, 3, 60),
        "current": rng.normal(0.5, 1.5, (n, 5)),
        "current_classes": rng.integers(0, 4, n),  # class 3 has no reference: NaN
        "k": 3,
    }


def _drift(rng: np.random.Generator, n: int) -> Kwargs:
    return {"times": rng.uniform(0, 100, n), "windows": np.array([[10.0, 30.0], [25.0, 50.0]])}


def _combine(rng: np.random.Generator, n: int) -> Kwargs:
    signals = {name: rng.random(n) for name in DEFAULT_WEIGHTS}
    signals["disagreement"][::2] = np.nan
    return {"signals": signals, "weights": DEFAULT_WEIGHTS}


def _nan_signal(kw: Kwargs) -> Kwargs:
    return {**kw, "signals": {**kw["signals"], "drift": np.array([2.0] * 3)}}


SIGNAL_CASES = [
    SignalCase(
        "instance_uncertainty",
        _uncertainty,
        lambda **kw: instance_uncertainty(**kw),
        bad=(
            ("nan score", _nan_at("scores"), "scores contains NaN, first at row 1"),
            ("score > 1", _with("scores", [0.5, 1.2]), "row 1 is 1.2"),
            ("2-D scores", _with("scores", [[0.5]]), "must be 1-D"),
            ("class rows", _shorter("class_scores"), "class_scores must have shape"),
            ("threshold", _with("threshold", 1.5), "threshold"),
        ),
    ),
    SignalCase(
        "image_uncertainty_max",
        _image_uncertainty,
        lambda **kw: image_uncertainty(**kw)[0],
        may_be_nan=True,
        bad=(
            ("nan", _nan_at("per_instance"), "per_instance contains NaN"),
            ("index", _with("n_images", 1), "outside 0 .. 0"),
            ("length", _shorter("image_index"), "image_index has"),
            ("negative n", _with("n_images", -1), "n_images"),
        ),
    ),
    SignalCase(
        "image_uncertainty_mean",
        _image_uncertainty,
        lambda **kw: image_uncertainty(**kw)[1],
        may_be_nan=True,
    ),
    SignalCase(
        "image_disagreement",
        _disagreement,
        lambda **kw: image_disagreement(**kw),
        may_be_nan=True,
        bad=(
            ("agreement > 1", _with("agreement", np.full(20, 1.5)), "agreement must lie"),
            ("negative", _with("production_only", np.full(20, -1)), "non-negative"),
            ("length", _shorter("n_reference"), "n_reference has 19 values, expected 20"),
            (
                "inconsistent",
                lambda kw: {**kw, "n_production": np.asarray(kw["n_production"]) + 1},
                "inconsistent",
            ),
        ),
    ),
    SignalCase(
        "KNNNovelty",
        _novelty,
        lambda reference, current: KNNNovelty(k=4).fit(reference).score(current),
        bad=(
            ("nan current", _nan_at("current"), "current contains NaN or inf"),
            ("nan reference", _nan_at("reference"), "reference contains NaN or inf"),
            ("features", lambda kw: {**kw, "current": np.zeros((3, 4))}, "4 features, expected 5"),
            ("too few", lambda kw: {**kw, "reference": np.zeros((4, 5))}, "needs at least 5"),
            ("1-D", lambda kw: {**kw, "current": np.zeros(5)}, "must be 2-D"),
        ),
    ),
    SignalCase(
        "instance_novelty",
        _instance_novelty,
        lambda **kw: instance_novelty(**kw),
        may_be_nan=True,
        bad=(
            ("classes", _shorter("current_classes"), "current_classes has 19 values"),
            ("k", _with("k", 0), "k must be an integer >= 1, got 0"),
            ("nan", _nan_at("current"), "current contains NaN"),
        ),
    ),
    SignalCase(
        "in_fired_windows",
        _drift,
        lambda **kw: in_fired_windows(**kw),
        bad=(
            ("nan time", _nan_at("times"), "times contains NaN"),
            ("backwards", _with("windows", [[5.0, 1.0]]), "ends before it starts"),
            ("shape", _with("windows", [[1.0, 2.0, 3.0]]), "shape"),
        ),
    ),
    SignalCase(
        "combine_signals",
        _combine,
        lambda **kw: combine_signals(**kw),
        bad=(
            (
                "unknown",
                lambda kw: {**kw, "weights": {"novelty": 1.0}},
                "unknown signal.*'novelty'",
            ),
            ("negative", lambda kw: {**kw, "weights": {"drift": -1.0}}, "weight of 'drift'"),
            ("out of range", _nan_signal, "drift"),
        ),
    ),
]
N = 20


def _ids(cases: list[SignalCase]) -> list[str]:
    return [case.name for case in cases]


def _copy(kwargs: Kwargs) -> Kwargs:
    out: Kwargs = {}
    for key, value in kwargs.items():
        if isinstance(value, Mapping):
            out[key] = {k: np.array(v, copy=True) for k, v in value.items()}
        elif isinstance(value, np.ndarray):
            out[key] = value.copy()
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=_ids(SIGNAL_CASES))
def test_one_float_per_sample_in_the_unit_interval(case: SignalCase) -> None:
    out = case.call(**case.make(np.random.default_rng(0), N))
    assert out.shape == (N,) and out.dtype == np.float64
    present = out[~np.isnan(out)]
    assert ((present >= 0.0) & (present <= 1.0)).all()
    # Not a constant: the inputs vary, so must the signal.
    assert np.unique(present).size > 1
    if case.may_be_nan:
        assert np.isnan(out).any(), "these inputs include samples without the signal"
    else:
        assert not np.isnan(out).any()


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=_ids(SIGNAL_CASES))
def test_deterministic_and_leaves_its_inputs_alone(case: SignalCase) -> None:
    kwargs = case.make(np.random.default_rng(1), N)
    before = _copy(kwargs)
    first = case.call(**kwargs)
    np.testing.assert_array_equal(first, case.call(**_copy(before)))
    for key, value in before.items():
        if isinstance(value, Mapping):
            for name, column in value.items():
                np.testing.assert_array_equal(kwargs[key][name], column)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(kwargs[key], value)


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=_ids(SIGNAL_CASES))
def test_empty_input_gives_an_empty_signal(case: SignalCase) -> None:
    kwargs = case.make(np.random.default_rng(2), N)
    if case.name.startswith("image_uncertainty"):
        kwargs = {"per_instance": [], "image_index": [], "n_images": 0}
    elif case.name == "image_disagreement":
        kwargs = {key: np.asarray(value)[:0] for key, value in kwargs.items()}
    elif case.name == "combine_signals":
        kwargs = {**kwargs, "signals": {k: v[:0] for k, v in kwargs["signals"].items()}}
    else:
        key = {"instance_uncertainty": "scores", "in_fired_windows": "times"}.get(case.name)
        if key is None:
            kwargs["current"] = np.asarray(kwargs["current"])[:0]
            if "current_classes" in kwargs:
                kwargs["current_classes"] = np.asarray(kwargs["current_classes"])[:0]
        else:
            kwargs[key] = np.asarray(kwargs[key])[:0]
            kwargs.pop("class_scores", None)
    assert case.call(**kwargs).shape == (0,)


BAD = [
    (case, label, mutate, message) for case in SIGNAL_CASES for label, mutate, message in case.bad
]


@pytest.mark.parametrize(
    ("case", "label", "mutate", "message"), BAD, ids=[f"{c.name}-{label}" for c, label, _, _ in BAD]
)
def test_malformed_input_raises_an_error_that_names_it(
    case: SignalCase, label: str, mutate: Mutation, message: str
) -> None:
    kwargs = mutate(case.make(np.random.default_rng(3), N))
    with pytest.raises(InvalidSignalError, match=message) as caught:
        case.call(**kwargs)
    # One root for every error segmon raises on purpose, and the matching built-in.
    assert isinstance(caught.value, SamplingError)
    assert isinstance(caught.value, SegmonError)
    assert isinstance(caught.value, ValueError)


# Samplers: what they return is a choice of rows, not a signal.


def _table(rng: np.random.Generator, n: int) -> CandidateTable:
    signals = {"uncertainty_max": rng.random(n), "disagreement": rng.random(n)}
    signals["disagreement"][::3] = np.nan
    return CandidateTable(
        keys=np.arange(100, 100 + n, dtype=np.int64),
        signals=signals,
        embeddings=rng.normal(size=(n, 4)),
        image_hashes=[f"h{i % (n - 2)}" for i in range(n)],
        classes=[frozenset({int(c)}) for c in rng.integers(0, 3, n)],
        n_instances=rng.integers(0, 5, n).astype(np.int64),
    )


SAMPLERS: list[tuple[str, Callable[[np.random.Generator], list[int]]]] = [
    ("k_center_greedy", lambda rng: k_center_greedy(rng.normal(size=(N, 3)), 7).tolist()),
    (
        "near_duplicates",
        lambda rng: np.flatnonzero(
            ~near_duplicates(rng.normal(size=(N, 3)), [None] * N, min_distance=1.0)
        ).tolist(),
    ),
    (
        "select",
        lambda rng: [
            item.key - 100
            for item in select(
                _table(rng, N), SelectionPolicy(max_items=7, duplicate_distance=0.1)
            ).items
        ],
    ),
]


@pytest.mark.parametrize(("name", "run"), SAMPLERS, ids=[name for name, _ in SAMPLERS])
def test_sampler_returns_distinct_valid_rows_deterministically(
    name: str, run: Callable[[np.random.Generator], list[int]]
) -> None:
    rows = run(np.random.default_rng(4))
    assert rows == run(np.random.default_rng(4))
    assert len(rows) == len(set(rows)) and all(0 <= r < N for r in rows)
    assert 0 < len(rows) <= N
    if name != "near_duplicates":
        assert len(rows) == 7
    else:
        assert len(rows) < N  # with min_distance 1.0 some of 20 3-d normals are close


SAMPLER_ERRORS: list[tuple[Callable[[], object], str]] = [
    (lambda: k_center_greedy(np.zeros((3, 2)), 0), "k must be an integer >= 1, got 0"),
    (lambda: k_center_greedy(np.zeros((3, 2)), 2, first=3), "first must be in 0 .. 2, got 3"),
    (lambda: k_center_greedy(np.array([[np.nan, 0.0]]), 1), "vectors contains NaN"),
    (lambda: near_duplicates(None, ["a"], min_distance=-0.5), "min_distance .* got -0.5"),
    (
        lambda: near_duplicates(np.zeros((2, 2)), ["a"], min_distance=0.5),
        "vectors has 2 rows, expected 1",
    ),
    (lambda: SelectionPolicy(max_items=5, max_instances=-3), "max_instances .* got -3"),
    (lambda: SelectionPolicy(max_items=5, class_quota={4: -1}), r"class_quota\[4\]"),
    (lambda: SelectionPolicy(max_items=5, weights={"speed": 1.0}), "'speed'"),
    (lambda: SelectionPolicy(max_items=5, diversity_pool=0), "diversity_pool"),
    (lambda: SelectionPolicy(max_items=5, duplicate_distance=float("nan")), "duplicate_distance"),
]


@pytest.mark.parametrize(("call", "message"), SAMPLER_ERRORS, ids=[m for _, m in SAMPLER_ERRORS])
def test_sampler_rejects_bad_arguments_naming_them(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidSignalError, match=message):
        call()
