"""Quantile binning and the two permutation nulls of the histogram detectors."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import JensenShannonDetector, KullbackLeiblerDetector
from detectors.binned import binned_null
from detectors.histogram import (
    bin_counts,
    binned_from_cumcounts,
    js_divergence,
    reference_bin_edges,
    tie_free_null_counts,
)
from detectors.permutation import permuted_reference_cumcounts, sorted_pooled


@pytest.mark.parametrize("discrete", [False, True])
def test_vectorised_binning_of_the_observed_split_matches_direct_histograms(discrete: bool) -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 5, 120).astype(float) if discrete else rng.normal(size=120)
    cur = rng.integers(0, 5, 70).astype(float) if discrete else rng.normal(size=70)
    values, is_ref, ends = sorted_pooled(ref, cur)
    cum_ref = next(permuted_reference_cumcounts(is_ref, ends, 0, rng))
    ref_counts, cur_counts = binned_from_cumcounts(cum_ref, ends.astype(np.int64) + 1, 120, 10)
    edges = reference_bin_edges(np.sort(ref), 10)
    np.testing.assert_array_equal(ref_counts[0], bin_counts(edges, ref, 10))
    np.testing.assert_array_equal(cur_counts[0], bin_counts(edges, cur, 10))


def test_reference_quantile_bins_hold_equal_reference_shares() -> None:
    ref = np.random.default_rng(1).normal(size=1000)
    counts = bin_counts(reference_bin_edges(np.sort(ref), 10), ref, 10)
    np.testing.assert_array_equal(counts, np.full(10, 100))


@pytest.mark.parametrize(("n", "m"), [(40, 40), (300, 60), (8, 50)])
def test_closed_form_null_matches_brute_force_permutations(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    ref, cur = rng.normal(size=n), rng.normal(size=m)
    ref_row, cur_cf = tie_free_null_counts(n, m, 10, 20000, rng)
    closed_form = js_divergence(np.broadcast_to(ref_row, cur_cf.shape), cur_cf)
    # Force the brute-force path by handing it data with one tie.
    ref_tied = ref.copy()
    ref_tied[0] = ref_tied[1]
    values, is_ref, ends = sorted_pooled(ref, cur)
    chunks = list(permuted_reference_cumcounts(is_ref, ends, 20000, rng))
    binned = [binned_from_cumcounts(c, ends.astype(np.int64) + 1, n, 10) for c in chunks]
    brute = js_divergence(
        np.concatenate([b[0] for b in binned])[1:], np.concatenate([b[1] for b in binned])[1:]
    )
    for q in (0.5, 0.9, 0.95):
        assert np.quantile(closed_form, q) == pytest.approx(np.quantile(brute, q), rel=0.05)
    assert binned_null(ref_tied, cur, 10, 5, rng)[1].sum(axis=1).tolist() == [m] * 5


def test_ties_at_bin_edges_leave_empty_bins_not_errors() -> None:
    ref = np.repeat([0.0, 1.0, 2.0], 30)
    result = JensenShannonDetector(n_permutations=99).fit(ref).score(np.repeat([0.0, 1.0, 2.0], 20))
    assert result.statistic == pytest.approx(0.0)
    assert not result.drift_detected
    moved = JensenShannonDetector(n_permutations=99).fit(ref).score(np.repeat([2.0], 40))
    assert moved.drift_detected


def test_kl_reports_both_directions_and_they_swap_with_the_samples() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=400), rng.normal(0.7, 1.3, size=400)
    ab = KullbackLeiblerDetector().fit(a).score(b)
    kl_cr, kl_rc = ab.details["kl_current_reference"], ab.details["kl_reference_current"]
    assert kl_cr > 0 and kl_rc > 0 and kl_cr != pytest.approx(kl_rc)
    assert ab.statistic == pytest.approx(kl_cr + kl_rc)
    forward = KullbackLeiblerDetector(direction="current_reference").fit(a).score(b)
    assert forward.statistic == pytest.approx(kl_cr)


def test_js_divergence_is_zero_for_equal_and_one_for_disjoint_histograms() -> None:
    np.testing.assert_allclose(js_divergence([[3, 3, 0, 0]], [[6, 6, 0, 0]]), [0.0], atol=1e-12)
    np.testing.assert_allclose(js_divergence([[3, 3, 0, 0]], [[0, 0, 4, 4]]), [1.0])
