"""Cluster permutations: whole groups move, uniformly, and row 0 is the observed split."""

from __future__ import annotations

import numpy as np
from scipy.stats import chisquare

from detectors.permutation import (
    PooledGroups,
    grouped_reference_cumcounts,
    row_label_chunks,
    sorted_pooled_groups,
)


def _groups(rng: np.random.Generator, n_ref: int, n_cur: int) -> PooledGroups:
    return PooledGroups(
        np.repeat(np.arange(n_ref), rng.integers(1, 6, size=n_ref)),
        np.repeat(np.arange(n_cur), rng.integers(1, 6, size=n_cur)),
    )


def test_group_splits_keep_groups_whole_and_are_uniform() -> None:
    rng = np.random.default_rng(0)
    groups = _groups(rng, 6, 3)
    splits = groups.permutations(3000, rng)
    assert splits[0].tolist() == [True] * 6 + [False] * 3
    assert (splits.sum(axis=1) == 6).all()
    rows = np.concatenate(list(row_label_chunks(splits, groups.pooled(), max_elements=1000)))
    pooled = groups.pooled()
    for g in range(9):  # every row of a group carries its group's label in every split
        assert (rows[:, pooled == g] == splits[:, [g]]).all()
    # Each of the C(9, 3) = 84 choices of current groups is equally likely.
    chosen = [tuple(np.flatnonzero(~s)) for s in splits[1:]]
    _, counts = np.unique(np.array(chosen), axis=0, return_counts=True)
    assert counts.size == 84
    assert chisquare(counts).pvalue > 0.001


def test_grouped_cumcounts_end_at_each_splits_reference_size() -> None:
    rng = np.random.default_rng(1)
    groups = _groups(rng, 8, 5)
    ref = rng.normal(size=groups.reference.size).round(1)  # ties on purpose
    cur = rng.normal(size=groups.current.size).round(1)
    _, group_of_sorted, ends = sorted_pooled_groups(ref, cur, groups.pooled())
    splits = groups.permutations(50, rng)
    cum = np.concatenate(list(grouped_reference_cumcounts(splits, group_of_sorted, ends)))
    reference_rows = splits[:, groups.pooled()].sum(axis=1)
    assert (cum[:, -1] == reference_rows).all()
    assert cum[0, -1] == ref.size
    assert len(set(reference_rows.tolist())) > 1  # sizes really vary between splits
