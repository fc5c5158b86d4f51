"""A/A benchmark: how often does each detector raise a false alarm at alpha = 0.05?

Reference and current windows are drawn from the same distribution (no shift),
``--trials`` times per detector, data set and sample size, each detector with its default
number of permutations and ``random_state=trial``. Data:

* univariate detectors: 1-D skewed values (gamma, shape 2);
* the class-mix detector (chi-square): class codes of five classes, one rare
  (:data:`CLASS_MIX`);
* embedding detectors: a fixed 6-component Gaussian mixture with anisotropic covariance
  (log-spaced spectrum over three decades, randomly rotated; seeded, so every trial
  samples the same mixture) at ``--dims`` (default 128 and 512). The PCA detector also
  runs its fast path: float32 input with ``pca_samples=100``, so windows of 200 and 500
  estimate the axes on a Bernoulli subsample of the pooled rows.

Acceptance rule: at alpha = 0.05 every cell's number of false alarms must lie inside the
two-sided 99% binomial interval around ``trials * alpha``, Bonferroni-widened over all
cells (each cell's interval has level ``1 - 0.01 / cells``), so that with every detector
exactly calibrated the whole table passes with probability >= 99%.

    python -m bench.bench_drift_false_alarm [--trials 200] [--sizes 20 50 200 500]
        [--dims 128 512] [--detectors NAME ...]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy.stats import binom

from bench._common import print_table, write_results
from detectors import (
    CATEGORICAL_DETECTORS,
    MULTIVARIATE_DETECTORS,
    UNIVARIATE_DETECTORS,
    BaseDetector,
    PCADivergenceDetector,
)

ALPHA = 0.05
MIXTURE_COMPONENTS = 6
SUBSAMPLED_PCA = 100
"""``pca_samples`` of the extra PCA rows: n >= 200 then estimates the axes on a subsample."""


class GaussianMixture:
    """A fixed anisotropic Gaussian mixture standing in for image embeddings."""

    def __init__(self, dim: int, seed: int = 12345) -> None:
        rng = np.random.default_rng([seed, dim])
        rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
        self.scales = np.logspace(0.5, -2.5, dim)  # std 3.2 down to 0.003
        self.rotation = rotation
        self.means = rng.normal(size=(MIXTURE_COMPONENTS, dim)) * self.scales * 2.0
        self.weights = rng.dirichlet(np.full(MIXTURE_COMPONENTS, 2.0))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(MIXTURE_COMPONENTS, size=n, p=self.weights)
        z = rng.normal(size=(n, self.scales.size)) * self.scales + self.means[comp]
        out: np.ndarray = z @ self.rotation.T
        return out


#: Class mix of the categorical A/A data: five classes, one rare.
CLASS_MIX = np.array([0.45, 0.25, 0.15, 0.12, 0.03])


def _pool(mixture: Any, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws: class codes, gamma(2) values, or mixture vectors."""
    if isinstance(mixture, str):  # "categorical"
        return rng.choice(len(CLASS_MIX), size=size, p=CLASS_MIX).astype(np.float64)
    if mixture is None:
        return rng.gamma(2.0, size=size)
    out: np.ndarray = mixture.sample(size, rng)
    return out


def run(
    trials: int, sizes: list[int], dims: list[int], seed: int, only: list[str] | None
) -> dict[str, Any]:
    detectors = [
        d
        for d in UNIVARIATE_DETECTORS + MULTIVARIATE_DETECTORS + CATEGORICAL_DETECTORS
        if not only or d.name in only
    ]
    # (class, label, data name, mixture or None for 1-D, extra hyperparameters, float32)
    datasets: list[tuple[type[BaseDetector], str, str, Any, dict[str, Any], bool]] = []
    for cls in detectors:
        if cls in CATEGORICAL_DETECTORS:
            datasets.append((cls, cls.name, "classes-5", "categorical", {}, False))
            continue
        if cls.input_shape == "univariate":
            datasets.append((cls, cls.name, "gamma-1d", None, {}, False))
            continue
        for d in dims:
            datasets.append((cls, cls.name, f"mixture-{d}d", GaussianMixture(d), {}, False))
        if cls is PCADivergenceDetector:  # the fast path: float32 kept, PCA on a subsample
            label = f"{cls.name}[pca_samples={SUBSAMPLED_PCA}]"
            extra = {"pca_samples": SUBSAMPLED_PCA}
            datasets.extend(
                (cls, label, f"mixture-{d}d-f32", GaussianMixture(d), extra, True) for d in dims
            )
    cells = len(datasets) * len(sizes)
    q = 0.01 / cells / 2
    lo_fw, hi_fw = binom.ppf([q, 1 - q], trials, ALPHA).tolist()
    lo99, hi99 = binom.ppf([0.005, 0.995], trials, ALPHA).tolist()
    rows: list[dict[str, Any]] = []
    for cls, label, data_name, mixture, extra, float32 in datasets:
        for n in sizes:
            start = time.perf_counter()
            alarms = 0
            for trial in range(trials):
                rng = np.random.default_rng([seed, n, trial])
                pool = _pool(mixture, 2 * n, rng)
                if float32:
                    pool = pool.astype(np.float32)
                det = cls(alpha=ALPHA, random_state=trial, **extra).fit(pool[:n])
                alarms += det.score(pool[n:]).drift_detected
            rows.append(
                {
                    "detector": label,
                    "data": data_name,
                    "n": n,
                    "trials": trials,
                    "false_alarms": alarms,
                    "rate": alarms / trials,
                    "inside_99": lo99 <= alarms <= hi99,
                    "inside_familywise_99": lo_fw <= alarms <= hi_fw,
                    "seconds_per_trial": (time.perf_counter() - start) / trials,
                }
            )
            print(f"{label:34s} {data_name:16s} n={n:4d} rate={alarms / trials:.3f}", flush=True)
    return {
        "alpha": ALPHA,
        "trials": trials,
        "sizes": sizes,
        "dims": dims,
        "cells": cells,
        "rule": "false alarms inside the two-sided binomial(trials, alpha) interval of level "
        "1 - 0.01/cells (99% family-wise, Bonferroni)",
        "interval_99_alarms": [lo99, hi99],
        "interval_familywise_99_alarms": [lo_fw, hi_fw],
        "all_inside_familywise_99": all(r["inside_familywise_99"] for r in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200, 500])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detectors", nargs="+", help="names to run (default: all)")
    parser.add_argument("--out", default="bench_drift_false_alarm", help="results file name")
    args = parser.parse_args()
    result = run(args.trials, args.sizes, args.dims, args.seed, args.detectors)
    print()
    print_table(
        ["detector", "data", "n", "rate", "alarms", "in 99%", "in family 99%", "s/trial"],
        [
            [
                r["detector"],
                r["data"],
                r["n"],
                r["rate"],
                r["false_alarms"],
                r["inside_99"],
                r["inside_familywise_99"],
                r["seconds_per_trial"],
            ]
            for r in result["rows"]
        ],
    )
    lo, hi = result["interval_99_alarms"]
    flo, fhi = result["interval_familywise_99_alarms"]
    t = result["trials"]
    print(f"\nper-cell binomial 99% interval: [{lo / t:.3f}, {hi / t:.3f}]")
    print(
        f"Bonferroni-widened over {result['cells']} cells (99% family-wise): "
        f"[{flo / t:.3f}, {fhi / t:.3f}]; all inside: {result['all_inside_familywise_99']}"
    )
    print(f"written to {write_results(args.out, result)}")


if __name__ == "__main__":
    main()
