from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import NotFittedError
from sampling import KNNNovelty, instance_novelty
from sampling.novelty import distance_to_novelty


@pytest.fixture
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 16))


def test_reference_points_are_not_novel_far_points_are(reference: np.ndarray) -> None:
    model = KNNNovelty(k=5).fit(reference)
    own = model.score(reference)
    # A reference point counts itself at distance 0, so it lies closer than typical.
    assert np.median(own) == 0.0 and own.max() < 0.3
    far = model.score(np.full((1, 16), 20.0))
    assert far[0] > 0.9


def test_novelty_grows_with_distance(reference: np.ndarray) -> None:
    model = KNNNovelty(k=5).fit(reference)
    direction = np.ones(16) / 4.0
    points = np.array([t * direction for t in (0.0, 2.0, 4.0, 8.0, 16.0)])
    out = model.score(points)
    assert (np.diff(out) >= 0).all() and out[-1] > out[1]


def test_fit_learns_leave_one_out_distances_and_their_median() -> None:
    reference = np.array([[0.0], [1.0], [3.0], [7.0]])
    model = KNNNovelty(k=1).fit(reference)
    np.testing.assert_allclose(model.reference_knn_, [1.0, 1.0, 2.0, 4.0])
    assert model.scale_ == 1.5
    # d = 3 (from 10 to 7): 1 - 1.5 / 3
    np.testing.assert_allclose(model.score([[10.0]]), [0.5])


def test_map_is_zero_up_to_the_scale_then_rises() -> None:
    np.testing.assert_allclose(
        distance_to_novelty(np.array([0.0, 1.0, 2.0, 4.0]), 2.0), [0.0, 0.0, 0.0, 0.5]
    )
    # A reference of duplicates (scale 0): anything away from it is novel.
    np.testing.assert_allclose(distance_to_novelty(np.array([0.0, 0.1]), 0.0), [0.0, 1.0])


def test_score_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="before fit"):
        KNNNovelty().score(np.zeros((1, 2)))


def test_instance_novelty_compares_within_the_class() -> None:
    rng = np.random.default_rng(1)
    cars, people = rng.normal(0, 1, (40, 8)), rng.normal(6, 1, (40, 8))
    reference = np.vstack([cars, people])
    classes = np.repeat([3, 9], 40)
    person_like = np.full((1, 8), 6.0)
    # A person-like embedding is typical as a person, novel as a car.
    as_person, as_car = (
        instance_novelty(reference, classes, person_like, [c], k=5)[0] for c in (9, 3)
    )
    assert as_person < 0.2 and as_car > 0.8


def test_instance_novelty_is_nan_for_a_class_with_too_few_references() -> None:
    reference = np.random.default_rng(2).normal(size=(10, 3))
    classes = np.array([1] * 6 + [2] * 4)
    out = instance_novelty(reference, classes, np.zeros((3, 3)), [1, 2, 5], k=4)
    assert not np.isnan(out[0])  # 6 >= k + 1
    assert np.isnan(out[1]) and np.isnan(out[2])  # 4 < 5, none
