"""The grouped histogram null against its definition, split by split."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.binned import grouped_binned_null
from detectors.histogram import bin_counts, reference_bin_edges
from detectors.permutation import PooledGroups


@pytest.mark.parametrize("decimals", [None, 1])  # continuous values, and many ties
def test_grouped_null_bins_each_split_on_its_own_reference_quantiles(
    decimals: int | None,
) -> None:
    rng = np.random.default_rng(0)
    groups = PooledGroups(
        np.repeat(np.arange(15), rng.integers(1, 7, size=15)),
        np.repeat(np.arange(9), rng.integers(1, 7, size=9)),
    )
    ref = rng.normal(size=groups.reference.size)
    cur = rng.normal(size=groups.current.size)
    if decimals is not None:
        ref, cur = ref.round(decimals), cur.round(decimals)
    splits = groups.permutations(40, rng)
    null_ref, null_cur = grouped_binned_null(ref, cur, groups.pooled(), splits, 5)
    pooled, pooled_groups = np.concatenate([ref, cur]), groups.pooled()
    assert null_ref.shape == null_cur.shape == (40, 5)
    for k, split in enumerate(splits[1:]):  # row 0, the observed split, is left out
        is_ref = split[pooled_groups]
        split_ref, split_cur = pooled[is_ref], pooled[~is_ref]
        edges = reference_bin_edges(np.sort(split_ref), 5)
        assert null_ref[k].tolist() == bin_counts(edges, split_ref, 5).tolist()
        assert null_cur[k].tolist() == bin_counts(edges, split_cur, 5).tolist()
