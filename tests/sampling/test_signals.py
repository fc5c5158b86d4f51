from __future__ import annotations

import numpy as np
import pytest

from sampling import DEFAULT_WEIGHTS, SIGNALS, InvalidSignalError, combine_signals, main_reason

NAN = float("nan")


def test_default_weights_cover_every_signal_and_sum_to_one() -> None:
    assert set(DEFAULT_WEIGHTS) == set(SIGNALS)
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in DEFAULT_WEIGHTS.values())
    with pytest.raises(TypeError):
        DEFAULT_WEIGHTS["drift"] = 5.0  # type: ignore[index]  # read-only: the assignment must fail


def test_weighted_mean_by_hand() -> None:
    signals = {"uncertainty_max": [0.8], "disagreement": [0.2], "drift": [1.0]}
    weights = {"uncertainty_max": 0.5, "disagreement": 0.25, "drift": 0.25}
    assert combine_signals(signals, weights)[0] == pytest.approx(0.4 + 0.05 + 0.25)


def test_missing_signals_renormalise_the_weights() -> None:
    weights = {"uncertainty_max": 3.0, "disagreement": 1.0}
    signals = {"uncertainty_max": [0.6, 0.6], "disagreement": [NAN, 0.2]}
    # Without a shadow row the sample is ranked by uncertainty alone, not dragged to 0.
    np.testing.assert_allclose(combine_signals(signals, weights), [0.6, (1.8 + 0.2) / 4])


def test_no_signal_at_all_scores_zero_and_reason_none() -> None:
    signals = {"uncertainty_max": [NAN, 0.5], "drift": [NAN, NAN]}
    np.testing.assert_allclose(combine_signals(signals, DEFAULT_WEIGHTS), [0.0, 0.5])
    assert main_reason(signals, DEFAULT_WEIGHTS) == ["none", "uncertainty_max"]


def test_a_signal_without_weight_does_not_count() -> None:
    signals = {"uncertainty_max": [0.2], "drift": [1.0]}
    assert combine_signals(signals, {"uncertainty_max": 1.0})[0] == pytest.approx(0.2)
    assert combine_signals(signals, {"uncertainty_max": 1.0, "drift": 0.0})[0] == pytest.approx(0.2)
    assert main_reason(signals, {"uncertainty_max": 1.0}) == ["uncertainty_max"]


def test_reason_is_the_largest_weighted_contribution() -> None:
    signals = {"uncertainty_max": [0.9, 0.3], "image_novelty": [0.5, 0.5]}
    weights = {"uncertainty_max": 1.0, "image_novelty": 1.5}
    # 0.9 vs 0.75: uncertainty; 0.3 vs 0.75: novelty
    assert main_reason(signals, weights) == ["uncertainty_max", "image_novelty"]
    # A tie goes to the signal listed first in SIGNALS.
    assert main_reason(
        {"drift": [0.5], "disagreement": [0.5]}, {"drift": 1, "disagreement": 1}
    ) == ["disagreement"]


@pytest.mark.parametrize(
    ("signals", "weights", "message"),
    [
        ({"speed": [0.1]}, {}, r"unknown signal name\(s\) in signals: 'speed'"),
        ({"drift": [0.1]}, {"drift": 1.0, "blur": 1.0}, "in weights: 'blur'"),
        ({"drift": [0.1]}, {"drift": NAN}, "weight of 'drift' must be finite"),
        ({"drift": [0.1, 0.2], "disagreement": [0.1]}, {}, "disagreement has 1 values, expected 2"),
        ({"drift": [-0.1]}, {}, r"drift must lie in \[0, 1\]; row 0 is -0.1"),
        ({"drift": [float("inf")]}, {}, "drift contains an infinite value at row 0"),
    ],
)
def test_bad_signals_or_weights_are_named(
    signals: dict[str, list[float]], weights: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidSignalError, match=message):
        combine_signals(signals, weights)


def test_no_signals_gives_an_empty_priority() -> None:
    assert combine_signals({}, DEFAULT_WEIGHTS).shape == (0,)
    assert main_reason({}, DEFAULT_WEIGHTS) == []
