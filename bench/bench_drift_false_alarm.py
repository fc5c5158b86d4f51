"""A/A benchmark: how often does each detector raise a false alarm at alpha = 0.05?

Reference and current are two halves of one random pool (no shift), ``--trials`` times
per detector and sample size, each detector with its default number of permutations.
The measured rate is compared with the two-sided binomial 95% interval around alpha
(and, because many cells are checked at once, with a Bonferroni-widened interval).

    python -m bench.bench_drift_false_alarm [--trials 200] [--sizes 50 200 1000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy.stats import binom

from bench._common import print_table, write_results
from detectors import MULTIVARIATE_DETECTORS, UNIVARIATE_DETECTORS, BaseDetector

ALPHA = 0.05
DIM = 32


def draw_pool(cls: type[BaseDetector], rng: np.random.Generator, size: int) -> Any:
    """Skewed 1-D values, or correlated anisotropic embeddings."""
    if cls in UNIVARIATE_DETECTORS:
        return rng.gamma(2.0, size=size)
    mixing = np.random.default_rng(12345).normal(size=(DIM, DIM)) / np.sqrt(DIM)
    scales = np.linspace(3.0, 0.2, DIM)
    return (rng.normal(size=(size, DIM)) * scales) @ mixing


def run(trials: int, sizes: list[int], seed: int, only: list[str] | None) -> dict[str, Any]:
    detectors = [
        d for d in UNIVARIATE_DETECTORS + MULTIVARIATE_DETECTORS if not only or d.name in only
    ]
    lo95, hi95 = (binom.ppf([0.025, 0.975], trials, ALPHA) / trials).tolist()
    cells = len(detectors) * len(sizes)
    q = 0.025 / cells
    lo_fw, hi_fw = (binom.ppf([q, 1 - q], trials, ALPHA) / trials).tolist()
    rows: list[dict[str, Any]] = []
    for cls in detectors:
        for n in sizes:
            start = time.perf_counter()
            alarms = 0
            for trial in range(trials):
                rng = np.random.default_rng([seed, n, trial])
                pool = draw_pool(cls, rng, 2 * n)
                det = cls(alpha=ALPHA, random_state=trial).fit(pool[:n])
                alarms += det.score(pool[n:]).drift_detected
            rate = alarms / trials
            rows.append(
                {
                    "detector": cls.name,
                    "n": n,
                    "trials": trials,
                    "false_alarms": alarms,
                    "rate": rate,
                    "inside_95": lo95 <= rate <= hi95,
                    "inside_familywise": lo_fw <= rate <= hi_fw,
                    "seconds_per_trial": (time.perf_counter() - start) / trials,
                }
            )
            print(f"{cls.name:28s} n={n:5d} rate={rate:.3f}", flush=True)
    return {
        "alpha": ALPHA,
        "trials": trials,
        "sizes": sizes,
        "dim_multivariate": DIM,
        "interval_95": [lo95, hi95],
        "interval_familywise_95": [lo_fw, hi_fw],
        "all_inside_95": all(r["inside_95"] for r in rows),
        "all_inside_familywise": all(r["inside_familywise"] for r in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detectors", nargs="+", help="names to run (default: all)")
    parser.add_argument("--out", default="bench_drift_false_alarm", help="results file name")
    args = parser.parse_args()
    result = run(args.trials, args.sizes, args.seed, args.detectors)
    print()
    print_table(
        ["detector", "n", "rate", "alarms", "in 95%", "in familywise", "s/trial"],
        [
            [
                r["detector"],
                r["n"],
                r["rate"],
                r["false_alarms"],
                r["inside_95"],
                r["inside_familywise"],
                r["seconds_per_trial"],
            ]
            for r in result["rows"]
        ],
    )
    lo, hi = result["interval_95"]
    flo, fhi = result["interval_familywise_95"]
    print(
        f"\nbinomial 95% interval around {ALPHA}: [{lo:.3f}, {hi:.3f}]; all inside: "
        f"{result['all_inside_95']}"
    )
    print(
        f"Bonferroni-widened over {len(result['rows'])} cells: [{flo:.3f}, {fhi:.3f}]; "
        f"all inside: {result['all_inside_familywise']}"
    )
    print(f"written to {write_results(args.out, result)}")


if __name__ == "__main__":
    main()
