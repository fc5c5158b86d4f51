"""Blocked torch MMD equals the dense textbook computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from detectors import MMDDetector
from detectors._typing import Float64Array
from detectors.mmd import median_bandwidth, mmd_permutation_statistics, resolve_device


def dense_mmd2(x: Float64Array, y: Float64Array, sigma: float) -> float:
    def k(a: Float64Array, b: Float64Array) -> Float64Array:
        squared: Float64Array = cdist(a, b, "sqeuclidean")  # scipy is untyped
        return np.exp(-squared / (2 * sigma**2))

    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


@pytest.mark.parametrize("block_size", [7, 64, 4096])
def test_blocked_statistics_match_dense_kernel_for_every_split(block_size: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4))
    labels = rng.permuted(np.broadcast_to(np.arange(90) < 50, (5, 90)), axis=1)
    weights = np.where(labels.T, 1 / 50, -1 / 40)
    got = mmd_permutation_statistics(
        torch.from_numpy(x.astype(np.float32)),
        torch.from_numpy(weights.astype(np.float32)),
        gamma=1 / (2 * 1.5**2),
        block_size=block_size,
    ).numpy()
    want = [dense_mmd2(x[row], x[~row], 1.5) for row in labels]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_detector_statistic_is_the_biased_mmd2_with_median_bandwidth() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=(80, 3)), rng.normal(0.4, size=(60, 3))
    result = MMDDetector(n_permutations=99, bandwidth_samples=1000).fit(ref).score(cur)
    sigma = float(np.median(pdist(np.vstack([ref, cur]))))
    assert result.details["bandwidth"] == pytest.approx(sigma, rel=1e-5)
    assert result.statistic == pytest.approx(dense_mmd2(ref, cur, sigma), rel=1e-4)


def test_fixed_bandwidth_is_used_as_given() -> None:
    rng = np.random.default_rng(2)
    det = MMDDetector(bandwidth=2.0, n_permutations=49).fit(rng.normal(size=(40, 2)))
    assert det.score(rng.normal(size=(30, 2))).details["bandwidth"] == 2.0


def test_median_bandwidth_subsamples_but_stays_close() -> None:
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(3000, 8)))
    full = float(np.median(pdist(x.numpy()[:1500])))
    assert median_bandwidth(x, 500, np.random.default_rng(0)) == pytest.approx(full, rel=0.05)


def test_auto_device_follows_cuda_availability() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_and_cpu_agree() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=(300, 16)), rng.normal(size=(200, 16))
    cpu = MMDDetector(device="cpu").fit(ref).score(cur)
    gpu = MMDDetector(device="cuda").fit(ref).score(cur)
    assert gpu.statistic == pytest.approx(cpu.statistic, rel=1e-4)
    assert gpu.p_value == cpu.p_value
