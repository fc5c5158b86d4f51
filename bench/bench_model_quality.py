"""COCO mask AP of the bundled checkpoints on fresh generated scenes, clean and drifted.

Scenes are rendered exactly as ``segmon synth --seed 777`` would (seed 777 is never used
in training); each drift knob is applied alone at two severities. Beside each model's AP,
the mean per-image shadow agreement of production with the reference
(:func:`monitor.quality.shadow.compare_instances`, the label-free signal the shadow job stores)
shows how much of production's degradation the reference sees. Writes
bench/results/bench_model_quality.json and prints a markdown table.

    python -m bench.bench_model_quality [--clean 500] [--drifted 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bench._common import write_results
from monitor.model.loading import load_model
from monitor.model.protocol import InstancePrediction, SegmentationModel
from monitor.quality.shadow import compare_instances
from monitor.synth import CATEGORIES, DRIFT_KNOBS, Scene, SynthConfig, render_scene

SEED = 777
SEVERITIES = (0.3, 0.7)


def _rle(mask: np.ndarray[Any, Any]) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return dict(rle)


def render(config: SynthConfig) -> list[Scene]:
    """The scenes ``segmon synth`` would write for ``config``."""
    return [
        render_scene(np.random.default_rng([config.seed, i, 0]), config)
        for i in range(config.n_images)
    ]


def predict_all(
    model: SegmentationModel, scenes: list[Scene], batch_size: int = 16
) -> list[list[InstancePrediction]]:
    """``model``'s instances on every scene."""
    out: list[list[InstancePrediction]] = []
    for start in range(0, len(scenes), batch_size):
        out.extend(model.predict([s.image for s in scenes[start : start + batch_size]]))
    return out


def shadow_agreement(
    production: list[list[InstancePrediction]], reference: list[list[InstancePrediction]]
) -> float:
    """Mean per-image shadow agreement (:func:`monitor.quality.shadow.compare_instances`)."""
    return float(
        np.mean(
            [
                compare_instances(
                    [(p.category_id, p.mask) for p in prod],
                    [(r.category_id, r.mask) for r in ref],
                ).agreement
                for prod, ref in zip(production, reference, strict=True)
            ]
        )
    )


def mask_ap(scenes: list[Scene], predictions: list[list[InstancePrediction]]) -> dict[str, float]:
    """COCO segm AP / AP50 / AP75 of ``predictions`` on ``scenes`` (novel objects unlabeled)."""
    images, annotations, results = [], [], []
    for i, (scene, preds) in enumerate(zip(scenes, predictions, strict=True)):
        h, w = scene.image.shape[:2]
        images.append({"id": i + 1, "width": w, "height": h})
        for mask, cat in zip(scene.masks, scene.category_ids.tolist(), strict=True):
            if cat == 0:
                continue
            rle = _rle(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": cat,
                    "segmentation": rle,
                    "area": float(mask.sum()),
                    "bbox": list(mask_utils.toBbox(rle)),
                    "iscrowd": 0,
                }
            )
        for p in preds:
            results.append(
                {
                    "image_id": i + 1,
                    "category_id": p.category_id,
                    "segmentation": _rle(p.mask),
                    "score": p.score,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CATEGORIES)],
        }
        gt.createIndex()
        if not results:
            return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"ap": float(ev.stats[0]), "ap50": float(ev.stats[1]), "ap75": float(ev.stats[2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clean", type=int, default=500, help="clean scenes")
    parser.add_argument("--drifted", type=int, default=100, help="scenes per knob and severity")
    parser.add_argument("--models", nargs="+", default=["production", "reference"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only-clean", action="store_true", help="skip the drifted scenes")
    args = parser.parse_args()
    settings: list[tuple[str, dict[str, float], int]] = [("clean", {}, args.clean)]
    for knob in () if args.only_clean else DRIFT_KNOBS:
        for severity in SEVERITIES:
            settings.append((f"{knob}={severity}", {knob: severity}, args.drifted))
    rows: dict[str, dict[str, dict[str, float]]] = {name: {} for name in args.models}
    models = {name: load_model(name, device=args.device) for name in args.models}
    agreement: dict[str, float] = {}
    started = time.perf_counter()
    for label, drift, n in settings:
        scenes = render(SynthConfig(n_images=n, seed=SEED, drift=drift))  # type: ignore[arg-type]
        predictions = {name: predict_all(model, scenes) for name, model in models.items()}
        for name in models:
            rows[name][label] = mask_ap(scenes, predictions[name])
            print(f"{name:10s} {label:16s} {rows[name][label]}", flush=True)
        if {"production", "reference"} <= set(models):
            agreement[label] = shadow_agreement(predictions["production"], predictions["reference"])
    print()
    header = "| scenes | n | " + " | ".join(f"{m} AP | {m} AP50" for m in args.models)
    print(header + (" | shadow agreement |" if agreement else " |"))
    print("|" + "---|" * (2 + 2 * len(args.models) + bool(agreement)))
    for label, _, n in settings:
        cells = " | ".join(
            f"{rows[m][label]['ap']:.3f} | {rows[m][label]['ap50']:.3f}" for m in args.models
        )
        shadow = f" | {agreement[label]:.3f}" if label in agreement else ""
        print(f"| {label} | {n} | {cells}{shadow} |")
    path = write_results(
        "bench_model_quality",
        {
            "seed": SEED,
            "severities": list(SEVERITIES),
            "results": rows,
            "shadow_agreement": agreement,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
