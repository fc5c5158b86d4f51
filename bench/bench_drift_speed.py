"""Speed of our embedding-drift detectors beside evidently 0.7.23, on the same arrays.

Parts (each run in its own process so peak memory is per part):

* ``pca``: PCA + per-component JS and KL, reference 100,000 x 512, current 10,000 x 512
  (``fit`` and ``score`` timed separately; the target is 1 s).
* ``mmd``: our MMD with 100 permutations, 10,000 vs 10,000 x 128 (targets 5 s, 2 GB).
* ``evidently``: evidently's ``EmbeddingsDrift`` on the same 10k x 128 arrays: the drift
  methods alone (``model()`` default, ``mmd()``) and the whole default ``Report`` run.

    python -m bench.bench_drift_speed [--part all|pca|mmd|evidently]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench._common import print_table, write_results

SEED = 0


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
    out["peak_rss_gb"] = _rss_gb()
    return out


PARTS = {"pca": part_pca, "mmd": part_mmd, "evidently": part_evidently}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", *PARTS], default="all")
    args = parser.parse_args()
    if args.part != "all":
        print(json.dumps(PARTS[args.part]()))
        return
    results: dict[str, Any] = {}
    for name in PARTS:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_drift_speed", "--part", name],
            check=True,
            capture_output=True,
            text=True,
        )
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    pca, mmd, ev = results["pca"], results["mmd"], results["evidently"]
    results["ratios"] = {
        "evidently_report_over_our_mmd": ev["report_default"]["seconds"] / mmd["seconds"],
        "evidently_model_method_over_our_mmd": ev["model_default"]["seconds"] / mmd["seconds"],
        "evidently_mmd_method_over_our_mmd": ev["mmd_default"]["seconds"] / mmd["seconds"],
    }
    rows = [
        ["ours PCA+JS fit (100k x 512)", pca["jensen_shannon"]["fit_s"], "", ""],
        ["ours PCA+JS score (10k x 512)", pca["jensen_shannon"]["score_s"], "", ""],
        ["ours PCA+KL fit", pca["kullback_leibler"]["fit_s"], "", ""],
        ["ours PCA+KL score", pca["kullback_leibler"]["score_s"], "", ""],
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
            "evidently EmbeddingsDrift Report",
            ev["report_default"]["seconds"],
            ev["peak_rss_gb"],
            "",
        ],
    ]
    print_table(["what", "seconds", "peak RSS GB", "drift"], rows)
    for key, value in results["ratios"].items():
        print(f"{key}: {value:.1f}x")
    print(f"written to {write_results('bench_drift_speed', results)}")


if __name__ == "__main__":
    main()
