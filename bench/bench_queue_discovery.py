"""Failure discovery: does the annotation queue's top 5% hold the images production gets wrong?

Each *day* is ``--images`` generated scenes (``segmon synth`` at seed ``1000 + s``),
clean or with one drift knob at ``--severity``. On every day the bench

1. runs the **bundled production checkpoint** over the images (real predictions, not
   synth's simulated production, whose scores come from the ground truth);
2. runs the **bundled reference model** over them and compares the two per image as the
   shadow job does (:func:`monitor.quality.shadow.compare_instances`, the configured
   ``shadow.min_iou`` of 0.1);
3. embeds the images and production's instances with the reference model (the default
   embedder), and the images and ground-truth instances of one clean *reference day*
   (seed 999, the labeled holdout's stand-in) for novelty;
4. marks an image **failed** when a production instance or a ground-truth instance of a
   known class is left unmatched at IoU 0.5 (same class, one-to-one, Hungarian); an
   instance on a novel-class object is a false positive. A stricter **severe** failure:
   F1 of production's instances at IoU 0.5 below 0.5.

Model outputs are cached per day in ``bench/results/cache/queue_discovery`` (gitignored),
so a rerun only scores. The signals come from :mod:`sampling` (uncertainty per instance,
max and mean per image; shadow disagreement; image novelty and the image's most novel
instance within its class, k-NN against the reference day), combined with
``DEFAULT_WEIGHTS`` (the drift-context signal is left out: on one day every image lies in
the same windows). At a budget of ``--budget`` (5%) of the day's images:

* ``queue``: the items :func:`sampling.select` picks with the default policy (k-center
  diversity over the top 4k by priority);
* ``queue-pool-all``: the same with the diversity pool the whole day (the default before
  this bench showed that diversity then overrides priority);
* ``top-k``: the top k by combined priority alone;
* ``uncertainty`` / ``disagreement`` / ``novelty``: the top k by that group alone;
* ``random``: the expected count of a random k, ``k * failed / n`` (the exact mean).

Reported per setting over the seeds: failed images in each selection divided by
random's (mean and standard deviation), the ceiling (an oracle's k failed images over
random's: ``1 / failure rate`` when failures outnumber k) and the AUROC of the combined
score for "image failed" (``sklearn.metrics.roc_auc_score``).

    nice -n 10 python -m bench.bench_queue_discovery [--images 100] [--seeds 10]
        [--settings clean blur contrast ...] [--severity 0.5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import roc_auc_score

from bench._common import RESULTS_DIR, print_table, write_results
from monitor.model.loading import load_model
from monitor.model.protocol import InstancePrediction, SegmentationModel
from monitor.quality.shadow import compare_instances, mask_ious
from monitor.synth import DRIFT_KNOBS, Scene, SynthConfig, render_scene

CACHE = RESULTS_DIR / "cache" / "queue_discovery"
REFERENCE_SEED = 999
DAY_SEED = 1000
MATCH_IOU = 0.5
SHADOW_MIN_IOU = 0.1  # shadow.min_iou's default
BATCH = 16

Array = npt.NDArray[Any]


def render(n: int, seed: int, drift: Mapping[Any, float]) -> list[Scene]:
    """The scenes ``segmon synth OUT --images n --seed seed --drift ...`` would write."""
    config = SynthConfig(n_images=n, seed=seed, drift=drift)
    return [render_scene(np.random.default_rng([seed, i, 0]), config) for i in range(n)]


def predict(model: SegmentationModel, scenes: list[Scene]) -> list[list[InstancePrediction]]:
    out: list[list[InstancePrediction]] = []
    for start in range(0, len(scenes), BATCH):
        out.extend(model.predict([s.image for s in scenes[start : start + BATCH]]))
    return out


def embed(
    model: SegmentationModel, scenes: list[Scene], masks: list[list[Array]]
) -> tuple[Array, list[Array]]:
    images, instances = [], []
    for start in range(0, len(scenes), BATCH):
        e = model.embed(
            [s.image for s in scenes[start : start + BATCH]], masks[start : start + BATCH]
        )
        images.append(e.images)
        instances.extend(e.instances)
    return np.concatenate(images), instances


def match_errors(scene: Scene, preds: list[InstancePrediction]) -> tuple[int, int, int]:
    """(matched, unmatched production, unmatched ground truth) at IoU 0.5, class-aware."""
    known = scene.category_ids > 0
    gt_masks = [m for m, k in zip(scene.masks, known, strict=True) if k]
    gt_cats = scene.category_ids[known]
    if not preds or not gt_masks:
        return 0, len(preds), len(gt_masks)
    iou = mask_ious([p.mask for p in preds], gt_masks)
    same = np.array([p.category_id for p in preds])[:, None] == gt_cats[None, :]
    candidate = np.where(same & (iou >= MATCH_IOU), iou, 0.0)
    rows, cols = linear_sum_assignment(candidate, maximize=True)
    matched = int((candidate[rows, cols] >= MATCH_IOU).sum())
    return matched, len(preds) - matched, len(gt_masks) - matched


def day_outputs(
    scenes: list[Scene], production: SegmentationModel, reference: SegmentationModel
) -> dict[str, Array]:
    """Everything the scoring needs of one day, as arrays (what the cache holds)."""
    prod = predict(production, scenes)
    ref = predict(reference, scenes)
    image_vectors, instance_vectors = embed(
        reference, scenes, [[p.mask for p in preds] for preds in prod]
    )
    shadow = [
        compare_instances(
            [(p.category_id, p.mask) for p in pp],
            [(r.category_id, r.mask) for r in rr],
            min_iou=SHADOW_MIN_IOU,
        )
        for pp, rr in zip(prod, ref, strict=True)
    ]
    errors = np.array([match_errors(s, pp) for s, pp in zip(scenes, prod, strict=True)])
    dim = image_vectors.shape[1]
    return {
        "matched": errors[:, 0],
        "production_unmatched": errors[:, 1],
        "gt_unmatched": errors[:, 2],
        "agreement": np.array([c.agreement for c in shadow]),
        "production_only": np.array(
            [sum(a.production_only for a in c.classes.values()) for c in shadow]
        ),
        "reference_only": np.array(
            [sum(a.reference_only for a in c.classes.values()) for c in shadow]
        ),
        "class_disagreements": np.array(
            [sum(a.class_disagreements for a in c.classes.values()) for c in shadow]
        ),
        "n_production": np.array([c.n_production for c in shadow]),
        "n_reference": np.array([c.n_reference for c in shadow]),
        "image_vectors": image_vectors.astype(np.float32),
        "instance_vectors": (
            np.concatenate(instance_vectors).astype(np.float32)
            if sum(len(v) for v in instance_vectors)
            else np.zeros((0, dim), np.float32)
        ),
        "instance_image": np.repeat(np.arange(len(prod)), [len(pp) for pp in prod]),
        "instance_class": np.array([p.category_id for pp in prod for p in pp], dtype=np.int64),
        "instance_score": np.array([p.score for pp in prod for p in pp], dtype=np.float64),
        "instance_class_scores": np.array(
            [p.class_scores for pp in prod for p in pp], dtype=np.float64
        ).reshape(-1, len(production.categories)),
    }


def reference_outputs(scenes: list[Scene], reference: SegmentationModel) -> dict[str, Array]:
    """The reference day: image vectors and ground-truth instance vectors with classes."""
    masks = [[m for m, c in zip(s.masks, s.category_ids, strict=True) if c > 0] for s in scenes]
    image_vectors, instance_vectors = embed(reference, scenes, masks)
    return {
        "image_vectors": image_vectors.astype(np.float32),
        "instance_vectors": np.concatenate(instance_vectors).astype(np.float32),
        "instance_class": np.concatenate([s.category_ids[s.category_ids > 0] for s in scenes]),
    }


def cached(path: Path, make: Any) -> dict[str, Array]:
    if path.is_file():
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    arrays: dict[str, Array] = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # the stub types **kwds as allow_pickle
    tmp.rename(path)
    return arrays


def first_images(day: dict[str, Array], n: int) -> dict[str, Array]:
    """The outputs of a day's first ``n`` images (image ``i`` does not depend on the size)."""
    keep = day["instance_image"] < n
    return {
        key: value[keep] if key.startswith("instance_") else value[:n] for key, value in day.items()
    }


def cached_day(tag: str, seed: int, n: int, make: Any) -> dict[str, Array]:
    """A day's outputs from the cache: its own file, else the prefix of a larger day's."""
    path = CACHE / f"{tag}_s{seed}_n{n}.npz"
    if not path.is_file():
        for other in sorted(CACHE.glob(f"{tag}_s{seed}_n*.npz")):
            size = int(other.stem.rsplit("_n", 1)[1])
            if size > n:
                return first_images(cached(other, make), n)
    return cached(path, make)


@dataclass(frozen=True)
class DayScore:
    n: int
    k: int
    failed: int
    severe: int
    found: dict[str, int]  # selection -> failed images it holds
    found_severe: dict[str, int]
    auroc: dict[str, float | None]  # score -> AUROC for "image failed"
    auroc_severe: dict[str, float | None]


def day_signals(day: dict[str, Array], ref: dict[str, Array]) -> dict[str, Array]:
    """The queue's signals per image of one day (``sampling``), drift context left out."""
    # the pure selection core (issue 13), imported here so --outputs-only runs without it
    from sampling.disagreement import image_disagreement
    from sampling.novelty import KNNNovelty, instance_novelty
    from sampling.uncertainty import image_uncertainty, instance_uncertainty

    n = len(day["agreement"])
    per_instance = instance_uncertainty(day["instance_score"], day["instance_class_scores"])
    u_max, u_mean = image_uncertainty(per_instance, day["instance_image"].astype(np.int64), n)
    disagreement = image_disagreement(
        day["agreement"].astype(np.float64),
        day["production_only"].astype(np.int64),
        day["reference_only"].astype(np.int64),
        day["class_disagreements"].astype(np.int64),
        day["n_production"].astype(np.int64),
        day["n_reference"].astype(np.int64),
    )
    novelty = KNNNovelty().fit(ref["image_vectors"].astype(np.float64))
    image_nov = novelty.score(day["image_vectors"].astype(np.float64))
    inst_nov = instance_novelty(
        ref["instance_vectors"].astype(np.float64),
        ref["instance_class"].astype(np.int64),
        day["instance_vectors"].astype(np.float64),
        day["instance_class"].astype(np.int64),
    )
    inst_nov_image = np.full(n, np.nan)  # the image's most novel instance
    for i, v in zip(day["instance_image"], inst_nov, strict=True):
        if not np.isnan(v):
            inst_nov_image[i] = v if np.isnan(inst_nov_image[i]) else max(inst_nov_image[i], v)
    return {
        "uncertainty_max": u_max,
        "uncertainty_mean": u_mean,
        "disagreement": disagreement,
        "image_novelty": image_nov,
        "instance_novelty": inst_nov_image,
    }


def candidates(day: dict[str, Array], signals: dict[str, Array]) -> Any:
    """The day's images as the queue's :class:`sampling.selection.CandidateTable`."""
    from sampling.selection import CandidateTable

    n = len(day["agreement"])
    counts = np.bincount(day["instance_image"], minlength=n)
    return CandidateTable(
        keys=np.arange(n, dtype=np.int64),
        signals=signals,
        embeddings=day["image_vectors"].astype(np.float64),
        image_hashes=[None] * n,
        classes=[
            frozenset(day["instance_class"][day["instance_image"] == i].tolist()) for i in range(n)
        ],
        n_instances=counts.astype(np.int64),
    )


def queue_pick(
    day: dict[str, Array],
    signals: dict[str, Array],
    k: int,
    seed: int,
    diversity_pool: int | None = None,
) -> Array:
    """Keys of the k items :func:`sampling.selection.select` queues (default weights).

    ``diversity_pool`` None keeps the policy's default (4 x k).
    """
    from sampling.selection import SelectionPolicy, select
    from sampling.signals import DEFAULT_WEIGHTS

    weights = {name: DEFAULT_WEIGHTS[name] for name in signals}
    policy = SelectionPolicy(max_items=k, weights=weights, seed=seed)
    if diversity_pool is not None:
        policy = SelectionPolicy(
            max_items=k, weights=weights, seed=seed, diversity_pool=diversity_pool
        )
    selection = select(candidates(day, signals), policy)
    return np.array([item.key for item in selection.items], dtype=np.int64)


def score_day(day: dict[str, Array], ref: dict[str, Array], budget: float, seed: int) -> DayScore:
    from sampling.signals import DEFAULT_WEIGHTS, combine_signals

    n = len(day["agreement"])
    k = max(1, round(budget * n))
    failed = (day["production_unmatched"] + day["gt_unmatched"]) > 0
    n_pred = day["matched"] + day["production_unmatched"]
    n_gt = day["matched"] + day["gt_unmatched"]
    denominator = n_pred + n_gt
    f1 = np.where(denominator > 0, 2 * day["matched"] / np.maximum(denominator, 1), 1.0)
    severe = f1 < 0.5
    signals = day_signals(day, ref)
    weights = {name: DEFAULT_WEIGHTS[name] for name in signals}
    groups = {
        "uncertainty": ("uncertainty_max", "uncertainty_mean"),
        "disagreement": ("disagreement",),
        "novelty": ("image_novelty", "instance_novelty"),
    }
    combined = combine_signals(signals, weights)
    scores = {"top-k": combined} | {
        group: combine_signals(
            {s: signals[s] for s in names}, {s: DEFAULT_WEIGHTS[s] for s in names}
        )
        for group, names in groups.items()
    }
    picks: dict[str, Array] = {
        name: np.argsort(-score, kind="stable")[:k] for name, score in scores.items()
    }
    picks["queue"] = queue_pick(day, signals, k, seed)
    picks["queue-pool-all"] = queue_pick(day, signals, k, seed, diversity_pool=n)

    rankings = {"combined": combined} | {g: scores[g] for g in groups}

    def auroc(labels: Array) -> dict[str, float | None]:
        return {
            name: float(roc_auc_score(labels, score)) if 0 < labels.sum() < n else None
            for name, score in rankings.items()
        }

    return DayScore(
        n=n,
        k=k,
        failed=int(failed.sum()),
        severe=int(severe.sum()),
        found={name: int(failed[idx].sum()) for name, idx in picks.items()},
        found_severe={name: int(severe[idx].sum()) for name, idx in picks.items()},
        auroc=auroc(failed),
        auroc_severe=auroc(severe),
    )


SELECTIONS = ("queue", "queue-pool-all", "top-k", "uncertainty", "disagreement", "novelty")


def summarise(days: list[DayScore], severe: bool) -> dict[str, Any]:
    """Ratios to random's expectation per selection (mean, sd over the days), and AUROC."""
    out: dict[str, Any] = {}
    ratios: dict[str, list[float]] = {name: [] for name in (*SELECTIONS, "ceiling")}
    rates: list[float] = []
    aurocs: dict[str, list[float]] = {}
    for d in days:
        positives = d.severe if severe else d.failed
        found = d.found_severe if severe else d.found
        random = d.k * positives / d.n
        rates.append(positives / d.n)
        for name, auc in (d.auroc_severe if severe else d.auroc).items():
            if auc is not None:
                aurocs.setdefault(name, []).append(auc)
        if random == 0:
            continue
        for name in SELECTIONS:
            ratios[name].append(found[name] / random)
        ratios["ceiling"].append(min(d.k, positives) / random)
    out["failure_rate"] = {"mean": float(np.mean(rates)), "sd": float(np.std(rates, ddof=1))}
    for name, values in ratios.items():
        out[name] = (
            {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)), "n": len(values)}
            if len(values) > 1
            else None
        )
    out["auroc"] = {
        name: (
            {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)), "n": len(v)}
            if len(v) > 1
            else None
        )
        for name, v in aurocs.items()
    }
    return out


def _cell(stat: dict[str, float] | None) -> str:
    return "-" if stat is None else f"{stat['mean']:.2f} ± {stat['sd']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100, help="images per day")
    parser.add_argument("--reference-images", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=10, help="days per setting")
    parser.add_argument(
        "--settings", nargs="+", default=["clean", *DRIFT_KNOBS], help="clean and/or knobs"
    )
    parser.add_argument("--severity", type=float, default=0.5)
    parser.add_argument("--budget", type=float, default=0.05, help="share of the day's images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--outputs-only", action="store_true", help="fill the cache, no scores")
    parser.add_argument("--name", default="bench_queue_discovery")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models: dict[str, SegmentationModel] = {}

    def model(name: str) -> SegmentationModel:
        if name not in models:
            models[name] = load_model(name, device="cpu")
        return models[name]

    ref = cached(
        CACHE / f"reference_s{REFERENCE_SEED}_n{args.reference_images}.npz",
        lambda: reference_outputs(
            render(args.reference_images, REFERENCE_SEED, {}), model("reference")
        ),
    )
    labels = {
        setting: "clean" if setting == "clean" else f"{setting}={args.severity}"
        for setting in args.settings
    }
    days: dict[str, list[DayScore]] = {label: [] for label in labels.values()}
    for s in range(args.seeds):  # seeds outermost: every setting gets its days in turn
        seed = DAY_SEED + s
        for setting, label in labels.items():
            drift = {} if setting == "clean" else {setting: args.severity}
            tag = "clean" if setting == "clean" else f"{setting}{args.severity}"
            day = cached_day(
                tag,
                seed,
                args.images,
                lambda seed=seed, drift=drift: day_outputs(
                    render(args.images, seed, drift), model("production"), model("reference")
                ),
            )
            if not args.outputs_only:
                days[label].append(score_day(day, ref, args.budget, seed))
            print(f"{label:16s} seed {seed}  {time.perf_counter() - started:7.1f} s", flush=True)
    results: dict[str, Any] = {
        label: {
            "failed": summarise(scored, severe=False),
            "severe": summarise(scored, severe=True),
            "days": [d.__dict__ for d in scored],
        }
        for label, scored in days.items()
        if scored
    }
    if args.outputs_only:
        return
    for kind in ("failed", "severe"):
        print(f"\n{kind} images: selection / random (mean ± sd over {args.seeds} days)")
        print_table(
            ["setting", "rate", *SELECTIONS, "ceiling", "AUROC"],
            [
                [
                    label,
                    f"{r[kind]['failure_rate']['mean']:.2f}",
                    *(_cell(r[kind][name]) for name in (*SELECTIONS, "ceiling")),
                    _cell(r[kind]["auroc"].get("combined")),
                ]
                for label, r in results.items()
            ],
        )
        print(f"\nAUROC for {kind} images per score (mean ± sd)")
        names = ("combined", "uncertainty", "disagreement", "novelty")
        print_table(
            ["setting", *names],
            [
                [label, *(_cell(r[kind]["auroc"].get(n)) for n in names)]
                for label, r in results.items()
            ],
        )
    path = write_results(
        args.name,
        {
            "images_per_day": args.images,
            "reference_images": args.reference_images,
            "seeds": args.seeds,
            "severity": args.severity,
            "budget": args.budget,
            "match_iou": MATCH_IOU,
            "results": results,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
