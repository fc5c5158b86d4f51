"""PCA on the pooled sample, per-component tests and the multiple-testing aggregate."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import PCADivergenceDetector
from detectors.pca_divergence import adjusted_p_values, project


def test_pooled_axes_are_the_principal_axes_of_the_pooled_sample() -> None:
    rng = np.random.default_rng(0)
    scale = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    ref, cur = rng.normal(size=(300, 5)) * scale, rng.normal(size=(200, 5)) * scale + 1.0
    det = PCADivergenceDetector(n_components=3).fit(ref)
    mean, axes = det.pooled_axes(cur)
    pooled = np.vstack([ref, cur])
    np.testing.assert_allclose(mean, pooled.mean(axis=0), atol=1e-10)
    eigvals, eigvecs = np.linalg.eigh(np.cov(pooled.T))
    expected = eigvecs[:, ::-1][:, :3]
    np.testing.assert_allclose(np.abs(axes.T @ expected), np.eye(3), atol=1e-4)


def test_drift_along_a_direction_without_reference_variance_is_seen() -> None:
    rng = np.random.default_rng(1)
    ref = np.c_[rng.normal(size=(300, 4)), np.zeros(300)]
    cur = np.c_[rng.normal(size=(200, 4)), rng.normal(0, 3.0, size=200)]
    result = PCADivergenceDetector(n_components=2, n_permutations=999).fit(ref).score(cur)
    assert result.drift_detected


def test_aggregates_summarise_the_component_divergences() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(500, 6)) * np.arange(6, 0, -1)
    cur = rng.normal(size=(300, 6)) * np.arange(6, 0, -1)
    cur[:, 0] += 4.0
    result = PCADivergenceDetector(n_components=4).fit(ref).score(cur)
    comps = [result.details[f"component_{i}_divergence"] for i in range(4)]
    pvals = np.array([result.details[f"component_{i}_p_value"] for i in range(4)])
    assert result.details["n_components"] == 4
    assert result.statistic == pytest.approx(max(comps)) == result.details["max_divergence"]
    assert result.details["mean_divergence"] == pytest.approx(np.mean(comps))
    assert result.p_value == pytest.approx(min(1.0, 4 * pvals.min()))
    assert result.details["share_drifted"] == pytest.approx(np.mean(4 * pvals <= 0.05))
    assert result.drift_detected


def test_kullback_leibler_variant_and_fdr_correction_run_and_detect() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) + 0.8
    det = PCADivergenceDetector(divergence="kullback_leibler", correction="fdr_bh").fit(ref)
    assert det.score(cur).drift_detected
    assert not det.score(rng.normal(size=(200, 5))).drift_detected


def test_n_components_is_capped_at_the_rank() -> None:
    rng = np.random.default_rng(4)
    ref = np.c_[rng.normal(size=(100, 2)), np.zeros((100, 3))]
    det = PCADivergenceDetector(n_components=10).fit(ref)
    assert (
        det.score(np.c_[rng.normal(size=(80, 2)), np.zeros((80, 3))]).details["n_components"] == 2
    )


def test_benjamini_hochberg_matches_the_step_up_rule() -> None:
    p = np.array([0.001, 0.2, 0.012, 0.04, 0.9])
    adj = adjusted_p_values(p, "fdr_bh")
    order = np.argsort(p)
    raw = p[order] * 5 / np.arange(1, 6)
    expected = np.minimum.accumulate(raw[::-1])[::-1]
    np.testing.assert_allclose(adj[order], expected)
    np.testing.assert_allclose(adjusted_p_values(p, "bonferroni"), np.minimum(1, 5 * p))


def test_float32_projection_keeps_order_and_breaks_ties_at_random() -> None:
    x = np.repeat(np.random.default_rng(5).normal(size=(50, 4)), 2, axis=0).astype(np.float32)
    axes = np.linalg.qr(np.random.default_rng(6).normal(size=(4, 2)))[0]
    proj = project(x, axes, np.random.default_rng(7))
    exact = (x.astype(np.float64) @ axes).astype(np.float32).astype(np.float64)
    assert np.unique(proj[:, 0]).size == 100  # every duplicated row is tie-broken
    # distinct float32 projections keep their order
    distinct = np.unique(exact[:, 0], return_index=True)[1]
    assert np.all(np.diff(proj[distinct[np.argsort(exact[distinct, 0])], 0]) > 0)


def test_subsampled_pca_keeps_float32_and_detects_a_shift() -> None:
    rng = np.random.default_rng(8)
    scale = np.linspace(2.0, 0.1, 16).astype(np.float32)
    ref = rng.standard_normal((4000, 16), dtype=np.float32) * scale
    det = PCADivergenceDetector(pca_samples=500, n_components=4).fit(ref)
    assert det.reference_.dtype == np.float32
    assert 400 < det.reference_kept_ < 600
    same = rng.standard_normal((1000, 16), dtype=np.float32) * scale
    shifted = same + np.r_[np.float32(1.0), np.zeros(15, dtype=np.float32)]
    assert not det.score(same).drift_detected
    assert det.score(shifted).drift_detected


@pytest.mark.slow
def test_subsampled_float32_pca_false_alarm_rate_is_near_alpha() -> None:
    alarms = 0
    trials = 100
    for trial in range(trials):
        rng = np.random.default_rng(200 + trial)
        pool = rng.standard_normal((1200, 8), dtype=np.float32) * np.float32(3.0)
        det = PCADivergenceDetector(pca_samples=200, n_components=3, random_state=trial)
        alarms += det.fit(pool[:800]).score(pool[800:]).drift_detected
    assert alarms <= 13  # binomial(100, 0.05) exceeds 13 with probability < 0.001
