from __future__ import annotations

import numpy as np
import pytest

from sampling import InvalidSignalError, image_uncertainty, instance_uncertainty

NAN = float("nan")


def test_closeness_to_the_threshold_by_hand() -> None:
    # 1 - |s - t| / max(t, 1 - t)
    out = instance_uncertainty([0.5, 0.0, 1.0, 0.75], threshold=0.5)
    np.testing.assert_allclose(out, [1.0, 0.0, 0.0, 0.5])
    # An asymmetric threshold: the farther side sets the scale.
    out = instance_uncertainty([0.3, 1.0, 0.0, 0.65], threshold=0.3)
    np.testing.assert_allclose(out, [1.0, 0.0, 1 - 0.3 / 0.7, 0.5])


def test_class_margin_raises_a_confident_detection() -> None:
    scores = [0.99, 0.99, 0.99, 0.99, 0.99]
    classes = [
        [0.5, 0.5, 0.0],  # a tie: margin 1
        [1.0, 0.0, 0.0],  # sure: margin 0, closeness 0.02 stays
        [6.0, 2.0, 2.0],  # renormalised: 0.6 - 0.2 -> 0.6
        [NAN, NAN, NAN],  # none
        [0.0, 0.0, 0.0],  # nothing to renormalise: none
    ]
    np.testing.assert_allclose(
        instance_uncertainty(scores, classes), [1.0, 0.02, 0.6, 0.02, 0.02], atol=1e-12
    )


def test_single_class_scores_have_no_margin() -> None:
    np.testing.assert_allclose(instance_uncertainty([0.9], [[0.3]]), [0.2])


@pytest.mark.parametrize(
    ("class_scores", "message"),
    [
        ([[0.5, NAN]], "row 0 mixes NaN"),
        ([[0.5, -0.1]], "row 0 column 1 is -0.1"),
        ([[0.5, 0.5], [0.5, 0.5]], r"shape \(1, C\)"),
    ],
)
def test_bad_class_scores_are_named(class_scores: list[list[float]], message: str) -> None:
    with pytest.raises(InvalidSignalError, match=message):
        instance_uncertainty([0.5], class_scores)


def test_image_max_and_mean_by_hand() -> None:
    top, mean = image_uncertainty([0.2, 0.6, 1.0, 0.4], [1, 1, 3, 1], 4)
    np.testing.assert_allclose(top, [NAN, 0.6, NAN, 1.0])
    np.testing.assert_allclose(mean, [NAN, 0.4, NAN, 1.0])


def test_image_index_out_of_range_is_named() -> None:
    with pytest.raises(InvalidSignalError, match="image_index row 1 is 5, outside 0 .. 2"):
        image_uncertainty([0.1, 0.2], [0, 5], 3)
