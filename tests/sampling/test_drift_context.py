from __future__ import annotations

import numpy as np
import pytest

from sampling import InvalidSignalError, in_fired_windows


def test_windows_are_half_open() -> None:
    out = in_fired_windows([9.999, 10.0, 20.0, 29.999, 30.0], [[10.0, 30.0]])
    np.testing.assert_array_equal(out, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_overlapping_touching_and_unsorted_windows() -> None:
    windows = [[50.0, 60.0], [0.0, 10.0], [5.0, 20.0], [20.0, 25.0], [40.0, 40.0]]
    out = in_fired_windows([-1.0, 7.0, 15.0, 20.0, 24.0, 30.0, 40.0, 55.0], windows)
    np.testing.assert_array_equal(out, [0, 1, 1, 1, 1, 0, 0, 1])


def test_no_fired_window_means_no_drift_context() -> None:
    np.testing.assert_array_equal(in_fired_windows([1.0, 2.0], np.zeros((0, 2))), [0.0, 0.0])


def test_non_finite_window_is_named() -> None:
    with pytest.raises(InvalidSignalError, match=r"windows row 1 is not finite"):
        in_fired_windows([1.0], [[0.0, 1.0], [2.0, float("inf")]])
