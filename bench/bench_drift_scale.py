"""Drift at scale: peak memory and time of the drift job as the window grows.

For each size N (default 10k and 100k; add 1000000 with --sizes), builds a SQLite
database with N reference samples and N samples in the window (captured evenly over
each span), each with an image embedding (float16, --dim) and image properties,
inserted directly (no images, no instances; --db-dir keeps the databases and reuses
them). Then runs the drift job (the ``image_embedding`` and ``image_properties``
families, default detectors) in a fresh subprocess per size and records its peak RSS
(``ru_maxrss``), wall time and the load average. Embedding vectors stream in chunks into
a bounded seeded sample (``drift.max_vectors`` per side); the image properties stream
too, into a sample of ``drift.max_values`` per side (Kolmogorov-Smirnov tests the
samples), while Jensen-Shannon counts the whole window on the reference's bins (merged
per chunk; closed-form null, the properties being tie-free; ``width`` and ``height``,
all equal, use the samples). Writes bench/results/bench_drift_scale.json.

    nice -n 10 python -m bench.bench_drift_scale [--sizes 10000 100000] [--dim 32]
    nice -n 10 python -m bench.bench_drift_scale --false-alarm 200 [--merged-trials 1000]

With ``--false-alarm TRIALS`` it instead runs an A/A loop (no database): reference and
window from one distribution, the window 20 times ``drift.max_values``, streamed in
chunks as the job streams them; it reports how often each sampled or merged check
alarms at alpha = 0.05 (bench/results/bench_drift_scale_false_alarm.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import print_table, write_results

NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
REFERENCE = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))


def _masks(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Sixteen box masks on a 64 x 64 image (the objects' columns, without the sample)."""
    from monitor.masks import encode_mask

    out = []
    for _ in range(16):
        h, w = (int(v) for v in rng.integers(4, 40, size=2))
        mask = np.zeros((64, 64), dtype=bool)
        mask[2 : 2 + h, 3 : 3 + w] = True
        m = encode_mask(mask)
        x, y, bw, bh = m.bbox
        out.append(
            {"bbox_x": x, "bbox_y": y, "bbox_w": bw, "bbox_h": bh, "area": m.area}
            | {"rle_counts": m.counts}
        )
    return out


def build(url: str, n: int, dim: int, seed: int = 0, objects: bool = False) -> None:
    """Insert ``n`` reference and ``n`` window samples (``objects``: two predictions each)."""
    from sqlalchemy import insert

    from monitor.config import DEFAULT_CATEGORIES
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory
    from monitor.storage.schema import (
        ImageEmbedding,
        ImageProperties,
        PredictedInstance,
        Sample,
        SampleStatus,
        Source,
    )

    engine = make_engine(url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    rng = np.random.default_rng(seed)
    with sessions.begin() as s:
        source = Source(uri="memory://bench", kind="dir", created_at=NOW, watermark={})
        s.add(source)
        s.flush()
        source_id = source.id
    next_id = 1
    for side, (start, end), shift in (("ref", REFERENCE, 0.0), ("cur", WINDOW, 0.1)):
        step = (end - start) / n
        for lo in range(0, n, 20_000):
            hi = min(n, lo + 20_000)
            ids = list(range(next_id, next_id + hi - lo))
            next_id += hi - lo
            vectors = (rng.normal(size=(hi - lo, dim)) + shift).astype(np.float16)
            props = rng.normal(size=(hi - lo, 4)) + shift
            with sessions.begin() as s:
                s.execute(
                    insert(Sample),
                    [
                        {
                            "id": i,
                            "source_id": source_id,
                            "request_id": f"{side}-{i}",
                            "captured_at": start + (lo + k) * step,
                            "ingested_at": NOW,
                            "width": 64,
                            "height": 64,
                            "status": SampleStatus.OK,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
                s.execute(
                    insert(ImageEmbedding),
                    [
                        {
                            "embedder": "bench",
                            "sample_id": i,
                            "dim": dim,
                            "vector": vectors[k].tobytes(),
                            "created_at": NOW,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
                if objects:
                    masks = _masks(rng)
                    picks = rng.integers(0, 16, size=(hi - lo, 2))
                    scores = np.clip(rng.beta(5, 2, size=(hi - lo, 2)) + shift / 2, 0, 1)
                    s.execute(
                        insert(PredictedInstance),
                        [
                            {"sample_id": i, "category_id": 1 + j, "score": float(scores[k, j])}
                            | masks[int(picks[k, j])]
                            for k, i in enumerate(ids)
                            for j in range(2)
                        ],
                    )
                s.execute(
                    insert(ImageProperties),
                    [
                        {
                            "sample_id": i,
                            "brightness": float(props[k, 0]),
                            "contrast": float(props[k, 1]),
                            "saturation": float(props[k, 2]),
                            "sharpness": float(props[k, 3]),
                            "width": 64,
                            "height": 64,
                            "computed_at": NOW,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
    engine.dispose()


def measure(url: str, scalar_checks: bool = True, objects: bool = False) -> dict[str, Any]:
    """Run the drift job once (in this process) and return peak RSS and time.

    Without ``scalar_checks`` the image properties are still read (their memory counts)
    but not tested, whose permutation calibration dominates the time at large sizes.
    """
    import resource

    from monitor.clock import ManualClock
    from monitor.config import DateRange, DriftDetectors, DriftSettings
    from monitor.drift.job import run_drift
    from monitor.storage.engine import make_engine, session_factory

    settings = DriftSettings(
        reference=DateRange(start=REFERENCE[0], end=REFERENCE[1]),
        windows=("1d",),
        detectors=DriftDetectors(
            instance_embedding=(),
            mask_geometry=DriftDetectors().mask_geometry if objects else (),
            prediction=DriftDetectors().prediction if objects else (),
            image_properties=("kolmogorov_smirnov", "jensen_shannon") if scalar_checks else (),
        ),
    )
    sessions = session_factory(make_engine(url))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    report = run_drift(sessions, settings, ManualClock(NOW))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
        "checks": len(report.checks),
        "drift_detected": sorted(
            f"{c.family}/{c.result.feature}/{c.detector}"
            for c in report.checks
            if c.result.drift_detected
        ),
        "n_reference_embedding": max(
            (c.result.n_reference for c in report.checks if c.family == "image_embedding"),
            default=0,
        ),
        "n_compared": {
            f"{c.family}/{c.result.feature}/{c.class_name}/{c.detector}": [
                c.result.n_reference,
                c.result.n_current,
            ]
            for c in report.checks
        },
        "brightness_n_compared": {
            c.detector: [c.result.n_reference, c.result.n_current]
            for c in report.checks
            if c.result.feature == "brightness"
        },
    }


def false_alarms(trials: int, merged_trials: int = 0, k: int = 1_000, alpha: float = 0.05) -> None:
    """A/A: how often the sampled and merged scalar checks alarm beyond the bound.

    Per trial (seeded by the trial): a reference of ``4 k`` and a window of ``20 k``
    values from one distribution, streamed in chunks of ``3 k`` into
    :class:`~monitor.drift.scalars.ScalarStream` (``max_values = k``), as the job does.
    ``continuous`` (gamma, tie-free): Jensen-Shannon on the merged counts of the whole
    window against the reference's sample, Kolmogorov-Smirnov on the two samples.
    ``objects`` (three per image, correlated within the image): both on samples of
    whole images, whole images permuted. ``rounded`` (ties): Jensen-Shannon on samples.
    Then ``merged_trials`` more trials (other seeds) of the merged Jensen-Shannon alone,
    which is fast, to pin its rate down more tightly.
    """
    from detectors.binned import HistogramDetector
    from detectors.registry import make_detector
    from monitor.drift.scalars import ScalarStream

    def stream(values: Any, groups: Any, ref: Any = None) -> ScalarStream:
        out = ScalarStream(k, seed=trial, reference=ref)
        ids = np.arange(values.size, dtype=np.int64)
        for lo in range(0, values.size, 3 * k):
            part = slice(lo, lo + 3 * k)
            out.add(ids[part], values[part], None if groups is None else groups[part])
        return out

    def objects(n_images: int, rng: np.random.Generator) -> tuple[Any, Any]:
        images = np.repeat(np.arange(n_images, dtype=np.int64), 3)
        return rng.normal(size=n_images)[images] + rng.normal(0, 0.5, images.size), images

    alarms: dict[str, int] = {}
    started = time.perf_counter()
    for trial in range(trials):
        rng = np.random.default_rng([2026, trial])
        checks: dict[str, bool] = {}
        ref = stream(rng.gamma(2.0, size=4 * k), None)
        window = rng.gamma(2.0, size=20 * k)
        cur = stream(window, None, ref.values())
        merged = cur.merged(window_distinct=np.unique(window).size == window.size)
        assert merged is not None and merged.tie_free
        for name in ("jensen_shannon", "kolmogorov_smirnov"):
            det = make_detector(name, alpha=alpha, seed=trial, feature="x").fit(ref.values())
            if isinstance(det, HistogramDetector):  # the whole window, merged per chunk
                checks[f"continuous/{name}"] = det.score_merged(merged).drift_detected
            else:
                checks[f"continuous/{name}"] = det.score(cur.values()).drift_detected
        (ref_values, ref_images), (cur_values, cur_images) = (
            objects(4 * k // 3, rng),
            objects(20 * k // 3, rng),
        )
        ref_o, cur_o = stream(ref_values, ref_images), stream(cur_values, cur_images)
        for name in ("jensen_shannon", "kolmogorov_smirnov"):
            det = make_detector(name, alpha=alpha, seed=trial, feature="x")
            det.fit(ref_o.values(), groups=ref_o.groups())
            checks[f"objects/{name}"] = det.score(
                cur_o.values(), groups=cur_o.groups()
            ).drift_detected
        ref_r = stream(np.round(rng.normal(size=4 * k), 1), None)
        window_r = np.round(rng.normal(size=20 * k), 1)
        cur_r = stream(window_r, None, ref_r.values())
        tied = cur_r.merged(window_distinct=np.unique(window_r).size == window_r.size)
        assert tied is not None and not tied.tie_free
        det = make_detector("jensen_shannon", alpha=alpha, seed=trial, feature="x")
        checks["rounded/jensen_shannon"] = (
            det.fit(ref_r.values()).score(cur_r.values()).drift_detected
        )
        for name, alarm in checks.items():
            alarms[name] = alarms.get(name, 0) + int(alarm)
    merged_alarms = 0
    for trial in range(merged_trials):
        rng = np.random.default_rng([2027, trial])
        ref = stream(rng.gamma(2.0, size=4 * k), None)
        cur = stream(rng.gamma(2.0, size=20 * k), None, ref.values())
        merged = cur.merged(window_distinct=True)
        assert merged is not None
        det = make_detector("jensen_shannon", alpha=alpha, seed=trial, feature="x")
        fitted = det.fit(ref.values())
        assert isinstance(fitted, HistogramDetector)
        merged_alarms += int(fitted.score_merged(merged).drift_detected)
    seconds = time.perf_counter() - started
    rows = [[name, count, trials, count / trials] for name, count in sorted(alarms.items())]
    if merged_trials:
        rows.append(
            [
                "continuous/jensen_shannon (merged only)",
                merged_alarms,
                merged_trials,
                merged_alarms / merged_trials,
            ]
        )
    print_table(["check", "false alarms", "trials", "rate"], rows)
    path = write_results(
        "bench_drift_scale_false_alarm",
        {
            "trials": trials,
            "alpha": alpha,
            "max_values": k,
            "reference_values": 4 * k,
            "window_values": 20 * k,
            "chunk_values": 3 * k,
            "false_alarms": alarms,
            "rate": {name: count / trials for name, count in alarms.items()},
            "merged_only_trials": merged_trials,
            "merged_only_false_alarms": merged_alarms,
            "seconds": seconds,
        },
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument(
        "--no-scalar-checks",
        action="store_true",
        help="read the image properties but run only the embedding checks (fast at 1M)",
    )
    parser.add_argument(
        "--objects",
        action="store_true",
        help="two predicted objects per sample; also run the geometry and prediction checks",
    )
    parser.add_argument(
        "--db-dir", type=Path, help="keep the databases here and reuse those already built"
    )
    parser.add_argument(
        "--false-alarm", type=int, metavar="TRIALS", help="run the A/A loop instead"
    )
    parser.add_argument(
        "--merged-trials", type=int, default=1000, help="with --false-alarm: merged-only trials"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, not args.no_scalar_checks, args.objects)))
        return
    if args.false_alarm:
        false_alarms(args.false_alarm, args.merged_trials)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            suffix = "_objects" if args.objects else ""
            path = (args.db_dir or Path(tmp)) / f"drift_{n}{suffix}.db"
            url = f"sqlite:///{path}"
            started = time.perf_counter()
            if not path.exists():
                build(f"sqlite:///{path}.part", n, args.dim, objects=args.objects)
                Path(f"{path}.part").rename(path)
            build_s = time.perf_counter() - started
            flags = ["--no-scalar-checks"] if args.no_scalar_checks else []
            flags += ["--objects"] if args.objects else []
            load_before = os.getloadavg()
            child = subprocess.run(
                [sys.executable, "-m", "bench.bench_drift_scale", "--measure", url, *flags],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            load = {"load_before": load_before, "load_after": os.getloadavg()}
            rows.append({"window_samples": n, "build_s": build_s, **result, **load})
            if args.db_dir is None:
                path.unlink()
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["peak_vs_smallest"] = row["peak_rss_mb"] / base
    print_table(
        ["window", "drift s", "peak RSS MB", "x smallest", "emb n_ref", "checks"],
        [
            [
                r["window_samples"],
                r["seconds"],
                r["peak_rss_mb"],
                r["peak_vs_smallest"],
                r["n_reference_embedding"],
                r["checks"],
            ]
            for r in rows
        ],
    )
    name = "bench_drift_scale_embedding_only" if args.no_scalar_checks else "bench_drift_scale"
    name += "_objects" if args.objects else ""
    path = write_results(
        name,
        {
            "dim": args.dim,
            "scalar_checks": not args.no_scalar_checks,
            "objects": args.objects,
            "rows": rows,
            "note": "reference and window both hold N samples",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
