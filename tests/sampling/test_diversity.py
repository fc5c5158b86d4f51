from __future__ import annotations

import numpy as np

from sampling import k_center_greedy, near_duplicates
from sampling.diversity import DuplicateFilter


def _clusters(
    rng: np.random.Generator, centres: list[float], per: int, spread: float
) -> np.ndarray:
    return np.vstack([rng.normal(c, spread, (per, 2)) for c in centres])


def test_two_tight_clusters_give_one_each_before_a_second_from_either() -> None:
    rng = np.random.default_rng(0)
    points = _clusters(rng, [0.0, 10.0], 20, 0.05)
    for first in (0, 25):
        picks = k_center_greedy(points, 2, first=first).tolist()
        assert {p // 20 for p in picks} == {0, 1}, picks


def test_every_cluster_is_covered_before_any_repeats() -> None:
    rng = np.random.default_rng(1)
    points = _clusters(rng, [0.0, 5.0, 10.0, 15.0, 20.0], 30, 0.1)
    picks = k_center_greedy(points, 5).tolist()
    assert sorted(p // 30 for p in picks) == [0, 1, 2, 3, 4]


def test_covering_radius_beats_taking_the_first_k() -> None:
    rng = np.random.default_rng(2)
    points = rng.uniform(size=(500, 2))

    def radius(chosen: np.ndarray) -> float:
        d = np.linalg.norm(points[:, None, :] - points[None, chosen, :], axis=2)
        return float(d.min(axis=1).max())

    assert radius(k_center_greedy(points, 20)) < 0.8 * radius(np.arange(20))


def test_first_point_defaults_to_index_zero_and_ties_go_low() -> None:
    points = np.array([[0.0], [1.0], [-1.0], [5.0], [5.0]])
    # From 0: 5.0 (rows 3 and 4 tie: row 3), then -1 (distance 1 from 0 ... 1 is also 1: row 1).
    assert k_center_greedy(points, 4).tolist() == [0, 3, 1, 2]


def test_k_above_n_returns_every_point_once() -> None:
    assert sorted(k_center_greedy(np.eye(3), 10).tolist()) == [0, 1, 2]


def test_duplicate_hash_keeps_the_first() -> None:
    out = near_duplicates(None, ["a", "b", "a", None, None, "b", "a"], min_distance=0.0)
    assert out.tolist() == [False, False, True, False, False, True, True]


def test_duplicate_distance_keeps_the_first_and_compares_with_kept_items() -> None:
    line = np.array([[0.0], [0.6], [1.2], [1.8], [5.0]])
    # 0.6 is within 1 of 0 (dropped); 1.2 is 1.2 from the kept 0 (kept); 1.8 within 1 of 1.2.
    out = near_duplicates(line, [None] * 5, min_distance=1.0)
    assert out.tolist() == [False, True, False, True, False]


def test_distance_zero_compares_hashes_only() -> None:
    same = np.zeros((3, 2))
    assert near_duplicates(same, [None, None, None], min_distance=0.0).tolist() == [False] * 3
    assert near_duplicates(same, [None, None, None], min_distance=1e-9).tolist() == [
        False,
        True,
        True,
    ]


def test_blocks_give_the_same_answer_as_one_pass() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(1300, 3))  # spans three blocks
    hashes = [f"h{i % 1000}" for i in range(1300)]
    whole = near_duplicates(points, hashes, min_distance=0.3)
    dedupe = DuplicateFilter(0.3, dim=3)
    one_by_one = [
        bool(dedupe.feed(points[i : i + 1].astype(np.float32), [hashes[i]])[0]) for i in range(1300)
    ]
    assert whole.tolist() == one_by_one
    assert whole[1000:].all()  # repeated hashes
    assert dedupe.n_kept == int((~whole).sum())
