"""Speed of our embedding-drift detectors beside evidently 0.7.23, on the same arrays.

Parts (each run in its own process so peak memory is per part):

* ``pca``: PCA + per-component JS and KL, reference 100,000 x 512, current 10,000 x 512
  (``fit`` and ``score`` timed separately; the target is 1 s).
* ``mmd``: our MMD with 100 permutations, 10,000 vs 10,000 x 128 (targets 5 s, 2 GB).
* ``evidently``: evidently's ``EmbeddingsDrift`` on the same 10k x 128 arrays: the drift
  methods alone (``model()`` default, ``mmd()``), the metric in a ``Report`` through the
  0.7 API (``evidently.metrics.EmbeddingsDrift``, a wrapper) and through the legacy API
  where the metric lives (``evidently.legacy...EmbeddingsDriftMetric``; it also fits a
  t-SNE of 2 x 5,000 rows for its plot, timed separately as ``tsne_only``).
* ``evidently_false_alarms``: how often evidently's default ``model()`` (SGD classifier,
  AUC > 0.55; bootstrap null when the reference has < 1,000 rows, as the metric does) and
  ``mmd()`` (MMD^2 > 0.015) methods flag NO-shift data: both windows from the A/A
  benchmark's 128-d Gaussian mixture, ``EVIDENTLY_RUNS`` runs per size.

Each part runs in a fresh process; ``pca`` runs twice, with the default BLAS threads
and with one (the 2 cores of this machine are shared with other jobs, and a contended
multi-threaded BLAS can be several times slower than a single thread).

    python -m bench.bench_drift_speed [--part all|pca|mmd|evidently|evidently_false_alarms]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench._common import print_table, write_results

SEED = 0
EVIDENTLY_RUNS = 10
EVIDENTLY_SIZES = (50, 200, 1000)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.1, dim).astype(np.float32)
    return rng.standard_normal((n, dim), dtype=np.float32) * scales


def part_pca() -> dict[str, Any]:
    from detectors import PCADivergenceDetector

    ref, cur = embeddings(100_000, 512, SEED), embeddings(10_000, 512, SEED + 1)
    out: dict[str, Any] = {}
    for divergence in ("jensen_shannon", "kullback_leibler"):
        det = PCADivergenceDetector(divergence=divergence, n_components=10)
        t0 = time.perf_counter()
        det.fit(ref)
        t1 = time.perf_counter()
        result = det.score(cur)
        t2 = time.perf_counter()
        out[divergence] = {
            "fit_s": t1 - t0,
            "score_s": t2 - t1,
            "total_s": t2 - t0,
            "p_value": result.p_value,
            "drift_detected": result.drift_detected,
        }
    out["peak_rss_gb"] = _rss_gb()
    return out


def part_mmd() -> dict[str, Any]:
    from detectors import MMDDetector

    ref, cur = embeddings(10_000, 128, SEED), embeddings(10_000, 128, SEED + 1)
    import torch  # noqa: F401 - count torch's own footprint in the baseline

    baseline = _rss_gb()
    det = MMDDetector(n_permutations=100).fit(ref)
    t0 = time.perf_counter()
    result = det.score(cur)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "n_permutations": 100,
        "p_value": result.p_value,
        "drift_detected": result.drift_detected,
        "peak_rss_gb": _rss_gb(),
        "peak_rss_over_baseline_gb": _rss_gb() - baseline,
        "torch_threads": __import__("torch").get_num_threads(),
    }


def part_evidently() -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod

    ref, cur = embeddings(10_000, 128, SEED), embeddings(10_000, 128, SEED + 1)
    cols = [f"e{i}" for i in range(128)]
    ref_df, cur_df = pd.DataFrame(ref, columns=cols), pd.DataFrame(cur, columns=cols)
    out: dict[str, Any] = {}
    # The methods alone, as EmbeddingsDriftMetric calls them: (current, reference).
    for label, method in (("model_default", ModelDriftMethod()), ("mmd_default", MMDDriftMethod())):
        t0 = time.perf_counter()
        score, detected, _ = method(cur_df, ref_df)
        out[label] = {
            "seconds": time.perf_counter() - t0,
            "score": float(score),
            "drift_detected": bool(detected),
        }
    definition = DataDefinition(embeddings={"emb": cols})
    report = Report([EmbeddingsDrift(embeddings_name="emb")])
    t0 = time.perf_counter()
    report.run(
        current_data=Dataset.from_pandas(cur_df, data_definition=definition),
        reference_data=Dataset.from_pandas(ref_df, data_definition=definition),
    )
    out["report_default"] = {"seconds": time.perf_counter() - t0}

    from evidently.legacy.metrics import EmbeddingsDriftMetric
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report as LegacyReport
    from sklearn.manifold import TSNE

    legacy = LegacyReport(metrics=[EmbeddingsDriftMetric("emb")])
    t0 = time.perf_counter()
    legacy.run(
        reference_data=ref_df,
        current_data=cur_df,
        column_mapping=ColumnMapping(embeddings={"emb": cols}),
    )
    out["legacy_metric"] = {"seconds": time.perf_counter() - t0}
    sample = np.concatenate([ref[:5000], cur[:5000]])
    t0 = time.perf_counter()
    TSNE(n_components=2).fit_transform(sample)
    out["tsne_only"] = {"seconds": time.perf_counter() - t0}
    out["peak_rss_gb"] = _rss_gb()
    return out


def part_evidently_false_alarms() -> dict[str, Any]:
    import pandas as pd
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod

    from bench.bench_drift_false_alarm import GaussianMixture

    mixture = GaussianMixture(128)
    cols = [f"e{i}" for i in range(128)]
    out: dict[str, Any] = {"runs": EVIDENTLY_RUNS, "data": "mixture-128d, no shift"}
    for n in EVIDENTLY_SIZES:
        alarms = {"model_default": 0, "mmd_default": 0}
        for run in range(EVIDENTLY_RUNS):
            rng = np.random.default_rng([SEED, n, run])
            ref = pd.DataFrame(mixture.sample(n, rng), columns=cols)
            cur = pd.DataFrame(mixture.sample(n, rng), columns=cols)
            methods = {
                "model_default": ModelDriftMethod(bootstrap=n < 1000),
                "mmd_default": MMDDriftMethod(),
            }
            for label, method in methods.items():
                alarms[label] += bool(method(cur.copy(), ref.copy())[1])
        out[f"n={n}"] = {k: v / EVIDENTLY_RUNS for k, v in alarms.items()}
    return out


PARTS = {
    "pca": part_pca,
    "mmd": part_mmd,
    "evidently": part_evidently,
    "evidently_false_alarms": part_evidently_false_alarms,
}


def _run_part(name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_drift_speed", "--part", name],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", *PARTS], default="all")
    args = parser.parse_args()
    if args.part != "all":
        print(json.dumps(PARTS[args.part]()))
        return
    results: dict[str, Any] = {name: _run_part(name) for name in PARTS}
    one = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results["pca_1_thread"] = _run_part("pca", one)
    pca, pca1, mmd, ev = (
        results["pca"],
        results["pca_1_thread"],
        results["mmd"],
        results["evidently"],
    )
    results["ratios"] = {
        "evidently_report_over_our_mmd": ev["report_default"]["seconds"] / mmd["seconds"],
        "evidently_legacy_metric_over_our_mmd": ev["legacy_metric"]["seconds"] / mmd["seconds"],
        "evidently_model_method_over_our_mmd": ev["model_default"]["seconds"] / mmd["seconds"],
        "evidently_mmd_method_over_our_mmd": ev["mmd_default"]["seconds"] / mmd["seconds"],
    }
    rows = []
    for label, part in (("", pca), (" [1 BLAS thread]", pca1)):
        for div, short in (("jensen_shannon", "JS"), ("kullback_leibler", "KL")):
            r = part[div]
            rows.append([f"ours PCA+{short} fit+score{label}", r["total_s"], "", ""])
            rows.append(
                [
                    "  fit 100k x 512 / score 10k x 512",
                    f"{r['fit_s']:.3f} / {r['score_s']:.3f}",
                    "",
                    "",
                ]
            )
    rows += [
        [
            "ours MMD, 100 perms (10k vs 10k x 128)",
            mmd["seconds"],
            mmd["peak_rss_gb"],
            mmd["drift_detected"],
        ],
        [
            "evidently model() method",
            ev["model_default"]["seconds"],
            "",
            ev["model_default"]["drift_detected"],
        ],
        [
            "evidently mmd() method",
            ev["mmd_default"]["seconds"],
            "",
            ev["mmd_default"]["drift_detected"],
        ],
        [
            "evidently EmbeddingsDrift Report (0.7 API)",
            ev["report_default"]["seconds"],
            ev["peak_rss_gb"],
            "",
        ],
        ["evidently EmbeddingsDriftMetric (legacy API)", ev["legacy_metric"]["seconds"], "", ""],
        ["  of which a t-SNE of 10k x 128 alone", ev["tsne_only"]["seconds"], "", ""],
    ]
    print_table(["what", "seconds", "peak RSS GB", "drift"], rows)
    print("\nevidently false alarms on no-shift data (share of runs flagged):")
    fa = results["evidently_false_alarms"]
    print_table(
        ["n per window", "model() default", "mmd() default"],
        [[n, fa[f"n={n}"]["model_default"], fa[f"n={n}"]["mmd_default"]] for n in EVIDENTLY_SIZES],
    )
    for key, value in results["ratios"].items():
        print(f"{key}: {value:.1f}x")
    print(f"written to {write_results('bench_drift_speed', results)}")


if __name__ == "__main__":
    main()
