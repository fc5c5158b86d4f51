"""Speed of the annotation-queue selection core (``sampling/``) at the issue's fill size.

Times, on seeded synthetic data (a Gaussian mixture of embeddings, production shifted
off the reference for a tenth of the candidates, 2% repeated image hashes):

* ``novelty_fit`` / ``novelty_score``: :class:`sampling.novelty.KNNNovelty` (k = 5,
  exact blocked numpy k-NN) fitted on the reference, scoring every candidate;
* ``novelty_score_1_blas_thread``: the same with one BLAS thread (on a machine whose
  cores other jobs keep busy, a multi-threaded BLAS can be slower than one thread);
* ``novelty_sklearn``: the same k-NN distances by scikit-learn's
  ``NearestNeighbors(algorithm="brute")``, for comparison;
* ``novelty_faiss_hnsw``: an approximate HNSW index (faiss-cpu, only when it is
  importable; not a segmon dependency) for the same distances, with its error;
* ``combine``: :func:`sampling.signals.combine_signals` over the six signals;
* ``near_dup_hash``: :func:`sampling.diversity.near_duplicates` by hash over every
  candidate; ``near_dup_pool``: by hash and distance over the top ``--pool``;
* ``k_center``: :func:`sampling.diversity.k_center_greedy` of ``--items`` over the pool;
* ``select``: the whole :func:`sampling.selection.select` (duplicates by hash and
  distance, three class quotas, an instance budget, k-center over the pool);
* ``fill``: ``novelty_score + combine + select``, what a queue fill computes (the
  issue's target: 10 s); ``fill_1_blas_thread`` with the one-thread novelty.

Each step's wall and process CPU seconds are recorded (CPU time, all threads together, is
what the step costs whatever else the machine runs). Peak memory is the process's max
RSS; the load average at the start is recorded, since
the timings depend on what else the machine runs. Writes bench/results/bench_sampling_speed.json.

    nice -n 10 python -m bench.bench_sampling_speed --candidates 100000 --reference 10000 \
        --dim 128 --pool 5000 --items 200
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from bench._common import print_table, write_results
from sampling import (
    CandidateTable,
    KNNNovelty,
    SelectionPolicy,
    combine_signals,
    k_center_greedy,
    near_duplicates,
    select,
)

T = TypeVar("T")
SEED = 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Wall and process CPU seconds of each step.

    CPU time counts all the process's threads: it is what a step costs, whatever else the
    machine runs, where wall time on a shared machine also counts the waiting.
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.wall[name] = time.perf_counter() - start
        self.cpu[name] = time.process_time() - cpu
        return out


def make_data(
    n: int, n_reference: int, dim: int, seed: int
) -> tuple[
    np.ndarray,
    np.ndarray,
    dict[str, np.ndarray],
    list[str | None],
    list[frozenset[int]],
    np.ndarray,
]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (32, dim)).astype(np.float32)
    reference = centres[rng.integers(0, 32, n_reference)] + rng.normal(
        0.0, 0.3, (n_reference, dim)
    ).astype(np.float32)
    current = centres[rng.integers(0, 32, n)] + rng.normal(0.0, 0.3, (n, dim)).astype(np.float32)
    shifted = rng.random(n) < 0.1
    current[shifted] += rng.normal(0.0, 0.6, (int(shifted.sum()), dim)).astype(np.float32)
    with_nan = rng.random(n)
    signals = {
        "uncertainty_max": np.where(with_nan < 0.05, np.nan, rng.random(n)),
        "uncertainty_mean": np.where(with_nan < 0.05, np.nan, rng.random(n) * 0.6),
        "disagreement": np.where(rng.random(n) < 0.5, np.nan, rng.random(n)),
        "instance_novelty": np.where(with_nan < 0.05, np.nan, rng.random(n)),
        "drift": (rng.random(n) < 0.2).astype(np.float64),
    }
    hashes: list[str | None] = [f"h{i}" for i in range(n)]
    for i in np.flatnonzero(rng.random(n) < 0.02)[1:]:
        hashes[i] = hashes[int(rng.integers(0, i))]
    category = rng.zipf(1.6, (n, 3)) % 80
    classes = [frozenset(int(c) for c in row) for row in category]
    n_instances = rng.poisson(4.0, n).astype(np.int64)
    return reference, current, signals, hashes, classes, n_instances


def _faiss_hnsw(
    reference: np.ndarray, current: np.ndarray, reference_knn: np.ndarray, watch: Stopwatch
) -> dict[str, Any] | None:
    """Time an approximate HNSW index (faiss-cpu, when importable) for the same k-NN means.

    Not a segmon dependency: the comparison says what an approximate index would save and
    how far its k-NN distances stray from the exact ones (it overestimates a distance when
    the graph search misses a true neighbour).
    """
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]  # optional comparison
    except ImportError:
        return None
    from sampling._neighbours import knn_mean_distance

    def search() -> np.ndarray:
        index = faiss.IndexHNSWFlat(reference.shape[1], 32)
        index.hnsw.efConstruction = 64
        index.add(reference)
        index.hnsw.efSearch = 64
        distances, _ = index.search(current, 5)
        return np.asarray(np.sqrt(np.maximum(distances, 0.0)).mean(axis=1), dtype=np.float64)

    approx = watch("novelty_faiss_hnsw", search)
    exact = knn_mean_distance(current, reference, 5)
    ratio = approx / np.maximum(exact, 1e-12) - 1.0
    return {
        "version": faiss.__version__,
        "mean_relative_error": float(ratio.mean()),
        "max_relative_error": float(ratio.max()),
        "share_off_by_more_than_1pct": float((ratio > 0.01).mean()),
        "reference_scale": float(np.median(reference_knn)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load = list(os.getloadavg())
    reference, current, signals, hashes, classes, n_instances = make_data(
        args.candidates, args.reference, args.dim, SEED
    )
    watch = Stopwatch()
    novelty = watch("novelty_fit", lambda: KNNNovelty(k=5).fit(reference))
    scores = watch("novelty_score", lambda: novelty.score(current))
    with threadpool_limits(limits=1, user_api="blas"):
        _ = watch("novelty_score_1_blas_thread", lambda: novelty.score(current))
    signals["image_novelty"] = scores
    if not args.skip_sklearn:
        from sklearn.neighbors import NearestNeighbors

        def sklearn_knn() -> np.ndarray:
            nn = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(reference)
            distances, _ = nn.kneighbors(current)
            return np.asarray(distances.mean(axis=1))

        _ = watch("novelty_sklearn", sklearn_knn)
    faiss_result = _faiss_hnsw(reference, current, novelty.reference_knn_, watch)
    weights = SelectionPolicy(max_items=1).weights
    priority = watch("combine", lambda: combine_signals(signals, weights))
    order = np.lexsort((np.arange(args.candidates), -priority))
    _ = watch("near_dup_hash", lambda: near_duplicates(None, hashes, min_distance=0.0))
    top = order[: args.pool]
    _ = watch(
        "near_dup_pool",
        lambda: near_duplicates(
            current[top], [hashes[i] for i in top], min_distance=args.duplicate_distance
        ),
    )
    _ = watch("k_center", lambda: k_center_greedy(current[top], args.items))
    table = CandidateTable(
        keys=np.arange(args.candidates, dtype=np.int64),
        signals=signals,
        embeddings=current,
        image_hashes=hashes,
        classes=classes,
        n_instances=n_instances,
    )
    rare = sorted(
        {c for s in classes for c in s}, key=lambda c: sum(c in s for s in classes[:5000])
    )[:3]
    policy = SelectionPolicy(
        max_items=args.items,
        max_instances=args.items * 5,
        class_quota={c: 5 for c in rare},
        diversity_pool=args.pool,
        duplicate_distance=args.duplicate_distance,
    )
    selection = watch("select", lambda: select(table, policy))
    for clock in (watch.wall, watch.cpu):
        clock["fill"] = clock["novelty_score"] + clock["combine"] + clock["select"]
        clock["fill_1_blas_thread"] = (
            clock["novelty_score_1_blas_thread"] + clock["combine"] + clock["select"]
        )
    quota_met = {str(c): sum(c in classes[int(item.key)] for item in selection.items) for c in rare}
    return {
        "args": vars(args),
        "seconds": watch.wall,
        "cpu_seconds": watch.cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "selected": len(selection.items),
        "selected_instances": selection.n_instances,
        "duplicates_dropped": selection.n_duplicates,
        "rare_class_items": quota_met,
        "reasons": {
            r: sum(i.reason == r for i in selection.items)
            for r in {i.reason for i in selection.items}
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "target_fill_s": 10.0,
        "faiss_hnsw": faiss_result,
        "load_average_at_start": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--reference", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--duplicate-distance", type=float, default=1.0)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument(
        "--suffix", default="", help="results in bench/results/bench_sampling_speed<SUFFIX>.json"
    )
    args = parser.parse_args()
    result = run(args)
    rows = [[name, wall, result["cpu_seconds"][name]] for name, wall in result["seconds"].items()]
    print_table(["step", "wall s", "cpu s"], rows)
    print(
        f"peak RSS {result['peak_rss_mb']:.0f} MB; selected {result['selected']} items "
        f"({result['selected_instances']} instances), {result['duplicates_dropped']} duplicates "
        f"dropped; rare-class items {result['rare_class_items']}"
    )
    path = write_results(f"bench_sampling_speed{args.suffix}", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
