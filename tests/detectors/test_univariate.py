"""KS and Wasserstein statistics agree with scipy; permutation p-values agree with theory."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors import KolmogorovSmirnovDetector, WassersteinDetector
from detectors.permutation import null_threshold, permutation_p_value


@pytest.mark.parametrize("discrete", [False, True])
def test_statistics_match_scipy(discrete: bool) -> None:
    rng = np.random.default_rng(0)
    if discrete:
        ref, cur = rng.poisson(3, 200).astype(float), rng.poisson(3.4, 130).astype(float)
    else:
        ref, cur = rng.normal(size=200), rng.normal(0.2, 1.1, size=130)
    ks = KolmogorovSmirnovDetector(n_permutations=99).fit(ref).score(cur)
    assert ks.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic)
    w = WassersteinDetector(n_permutations=99).fit(ref).score(cur)
    assert w.statistic == pytest.approx(stats.wasserstein_distance(ref, cur))


def test_ks_permutation_p_value_tracks_the_exact_ks_p_value() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=60), rng.normal(0.35, size=40)
    ours = KolmogorovSmirnovDetector(n_permutations=4000).fit(ref).score(cur)
    exact = stats.ks_2samp(ref, cur, method="exact").pvalue
    assert ours.p_value == pytest.approx(exact, abs=0.02)


def test_p_value_counts_ties_and_never_reaches_zero() -> None:
    assert permutation_p_value(5.0, [1.0, 2.0]) == pytest.approx(1 / 3)
    assert permutation_p_value(2.0, [1.0, 2.0]) == pytest.approx(2 / 3)
    assert null_threshold(np.arange(1000.0), 0.05) == 950.0
