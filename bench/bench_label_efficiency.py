"""Label efficiency: does labelling what the queue picks fix the model faster than random?

One drifted *pool* (``--pool`` generated scenes with ``--drift``, seed 2000) stands for the
production samples waiting to be labelled, and a held-out drifted *test* set (``--test``
scenes, same drift, seed 3000) for the quality that matters. The queue scores the pool as
``bench_queue_discovery`` does (bundled production predictions, shadow comparison with
the bundled reference, reference embeddings, novelty against the clean reference day;
:mod:`sampling` signals, ``DEFAULT_WEIGHTS``) and :func:`sampling.selection.select` picks
k images; a random draw of k images is the baseline. Each choice's ground truth (what an
annotator would return) fine-tunes the bundled production checkpoint
(:func:`monitor.model.train.train_network` with ``initial``: the same ``--steps``, batch,
crops, learning rate and flips for every run, seeded), and the fine-tuned model's COCO
mask AP on the test set comes from segmon's evaluator
(:func:`monitor.quality.evaluation.evaluate`, equal to pycocotools).

For k in ``--ks`` (50, 100, 200) and ``--seeds`` seeds (the seed drives the random draw,
the queue's k-center start and the training). Target: the queue's k = 100 matches or
beats random's k = 200. Pool outputs and finished runs are cached in
``bench/results/cache/label_efficiency`` (gitignored), so an interrupted run resumes.

    nice -n 10 python -m bench.bench_label_efficiency [--pool 600] [--test 150]
        [--drift blur=0.5] [--ks 50 100 200] [--seeds 3] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from bench._common import RESULTS_DIR, print_table, write_results
from bench.bench_queue_discovery import (
    CACHE as DISCOVERY_CACHE,
)
from bench.bench_queue_discovery import (
    REFERENCE_SEED,
    Array,
    cached,
    day_outputs,
    day_signals,
    queue_pick,
    reference_outputs,
    render,
)
from monitor.model.adapters import BuiltinModel
from monitor.model.checkpoint import load_checkpoint
from monitor.model.data import Targets, TrainingData, make_targets
from monitor.model.loading import bundled_path, load_model
from monitor.model.network import SegmentationNetwork
from monitor.model.train import Augmentation, TrainOptions, train_network
from monitor.quality.evaluation import GroundTruth, Prediction, evaluate
from monitor.synth import CATEGORIES, Scene, parse_drift

CACHE = RESULTS_DIR / "cache" / "label_efficiency"
POOL_SEED = 2000
TEST_SEED = 3000


def training_data(scenes: list[Scene], categories: tuple[str, ...]) -> TrainingData:
    """The scenes' known-class ground truth as training targets (images are 256 px)."""
    semantic, center, offset, foreground = [], [], [], []
    for scene in scenes:
        ids = np.zeros(scene.image.shape[:2], np.int32)
        classes: list[int] = []
        for mask, cat in zip(scene.masks, scene.category_ids.tolist(), strict=True):
            if cat > 0:
                classes.append(cat)
                ids[mask] = len(classes)
        sem, cen, off, fg = make_targets(ids, np.asarray(classes, dtype=np.int64))
        semantic.append(sem)
        center.append(cen)
        offset.append(off)
        foreground.append(fg)
    targets = Targets(np.stack(semantic), np.stack(center), np.stack(offset), np.stack(foreground))
    return TrainingData(categories, np.stack([s.image for s in scenes]), targets)


def _rle(mask: Array) -> dict[str, Any]:
    rle: dict[str, Any] = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return rle


def ground_truth(scenes: list[Scene]) -> list[GroundTruth]:
    return [
        GroundTruth(i + 1, int(cat), _rle(mask), area=float(mask.sum()))
        for i, scene in enumerate(scenes)
        for mask, cat in zip(scene.masks, scene.category_ids.tolist(), strict=True)
        if cat > 0
    ]


def mask_ap(
    network: SegmentationNetwork | None, scenes: list[Scene], gts: list[GroundTruth]
) -> dict[str, float | None]:
    """COCO mask AP / AP50 of ``network`` (None: the bundled production) on ``scenes``."""
    model = (
        load_model("production", device="cpu")
        if network is None
        else BuiltinModel(network, "builtin:finetuned", device="cpu")
    )
    preds: list[Prediction] = []
    for start in range(0, len(scenes), 16):
        batch = scenes[start : start + 16]
        for offset, instances in enumerate(model.predict([s.image for s in batch])):
            preds.extend(
                Prediction(start + offset + 1, p.category_id, float(p.score), _rle(p.mask))
                for p in instances
            )
    categories = {i + 1: name for i, name in enumerate(CATEGORIES)}
    report = evaluate(gts, preds, categories, image_ids=list(range(1, len(scenes) + 1)))
    return {"ap": report.coco.ap, "ap50": report.coco.ap50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=600, help="drifted pool images")
    parser.add_argument("--test", type=int, default=150, help="held-out drifted test images")
    parser.add_argument("--drift", nargs="+", default=["blur=0.5"], help="NAME=SEVERITY")
    parser.add_argument("--ks", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reference-images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--name", default="bench_label_efficiency", help="results file name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    drift = parse_drift(args.drift)
    tag = "_".join(f"{k}{v}" for k, v in drift.items()) or "clean"

    pool = render(args.pool, POOL_SEED, dict(drift))
    test = render(args.test, TEST_SEED, dict(drift))
    test_gts = ground_truth(test)
    ref = cached(
        DISCOVERY_CACHE / f"reference_s{REFERENCE_SEED}_n{args.reference_images}.npz",
        lambda: reference_outputs(
            render(args.reference_images, REFERENCE_SEED, {}), load_model("reference", "cpu")
        ),
    )
    pool_day = cached(
        CACHE / f"pool_{tag}_s{POOL_SEED}_n{args.pool}.npz",
        lambda: day_outputs(pool, load_model("production", "cpu"), load_model("reference", "cpu")),
    )
    signals = day_signals(pool_day, ref)
    failed = (pool_day["production_unmatched"] + pool_day["gt_unmatched"]) > 0
    print(f"pool ready ({failed.mean():.2f} failed)  {time.perf_counter() - started:.0f} s")
    base_network, _ = load_checkpoint(bundled_path("production"))
    runs_dir = CACHE / (
        f"runs_{tag}_p{args.pool}_t{args.test}_st{args.steps}_b{args.batch_size}"
        f"_c{args.crop}_lr{args.lr}"
    )
    runs_dir.mkdir(parents=True, exist_ok=True)
    baseline_path = runs_dir / "baseline.json"
    if not baseline_path.is_file():
        baseline_path.write_text(json.dumps(mask_ap(None, test, test_gts)))
    baseline = json.loads(baseline_path.read_text())
    print(f"production before fine-tuning: AP {baseline['ap']:.3f}", flush=True)

    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for k in args.ks:
            for method in ("queue", "random"):
                path = runs_dir / f"{method}_k{k}_s{seed}.json"
                if path.is_file():
                    runs.append(json.loads(path.read_text()))
                    continue
                if method == "queue":
                    chosen = queue_pick(pool_day, signals, k, seed)
                else:
                    chosen = np.random.default_rng([seed, k]).choice(args.pool, k, replace=False)
                data = training_data([pool[i] for i in chosen], base_network.config.categories)
                options = TrainOptions(
                    steps=args.steps,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    seed=seed,
                    augment=frozenset({Augmentation.FLIP}),
                    device="cpu",
                    crop=args.crop,
                )
                result = train_network(data, base_network.config, options, initial=base_network)
                run = {
                    "method": method,
                    "k": k,
                    "seed": seed,
                    "failed_share": float(failed[chosen].mean()),
                    "instances": int(sum(int((pool[i].category_ids > 0).sum()) for i in chosen)),
                    "final_loss": result.losses[-1],
                    **mask_ap(result.network, test, test_gts),
                }
                path.write_text(json.dumps(run))
                runs.append(run)
                print(
                    f"{method:6s} k={k:3d} seed {seed}: AP {run['ap']:.3f}  "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )

    summary: dict[str, dict[str, Any]] = {}
    for method in ("queue", "random"):
        for k in args.ks:
            mine = [r for r in runs if r["method"] == method and r["k"] == k]
            aps = np.array([r["ap"] for r in mine], dtype=np.float64)
            summary[f"{method}_k{k}"] = {
                "ap_mean": float(aps.mean()),
                "ap_sd": float(aps.std(ddof=1)) if len(aps) > 1 else None,
                "ap50_mean": float(np.mean([r["ap50"] for r in mine])),
                "failed_share": float(np.mean([r["failed_share"] for r in mine])),
                "instances": float(np.mean([r["instances"] for r in mine])),
            }
    print(
        f"\nmask AP on {args.test} held-out {tag} scenes (production before: {baseline['ap']:.3f})"
    )
    print_table(
        ["k", "queue AP", "random AP", "queue failed share", "random failed share"],
        [
            [
                k,
                f"{summary[f'queue_k{k}']['ap_mean']:.3f} ± {summary[f'queue_k{k}']['ap_sd'] or 0:.3f}",
                f"{summary[f'random_k{k}']['ap_mean']:.3f} ± {summary[f'random_k{k}']['ap_sd'] or 0:.3f}",
                f"{summary[f'queue_k{k}']['failed_share']:.2f}",
                f"{summary[f'random_k{k}']['failed_share']:.2f}",
            ]
            for k in args.ks
        ],
    )
    target = None
    if {100, 200} <= set(args.ks):
        target = summary["queue_k100"]["ap_mean"] >= summary["random_k200"]["ap_mean"]
        print(f"\nqueue k=100 >= random k=200: {target}")
    path = write_results(
        args.name,
        {
            "drift": dict(drift),
            "pool": args.pool,
            "test": args.test,
            "ks": args.ks,
            "seeds": args.seeds,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "crop": args.crop,
            "lr": args.lr,
            "pool_failed_share": float(failed.mean()),
            "baseline": baseline,
            "summary": summary,
            "target_queue_k100_ge_random_k200": target,
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
