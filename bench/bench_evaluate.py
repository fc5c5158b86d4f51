"""Evaluation speed: segmon's full evaluation against COCOeval alone.

    python -m bench.bench_evaluate --images 5000 --repeats 3

Generates (once, cached under --cache) a seeded dataset of numpy-drawn discs, ellipses
and boxes of 10 classes on images of 256-512 px, about 10 ground-truth instances per
image (1% crowd), and predictions made from them (eroded, dilated, shifted, dropped,
duplicated, relabeled, random scores) plus random false positives. Then times, each the
median of --repeats runs on the same data already in memory:

- segmon: ``monitor.quality.evaluation.evaluate`` -- COCO mask AP plus per-class IoU, precision,
  recall, F1, FP/image, recall by size, the confusion matrix and per-instance outcomes;
- pycocotools: COCO index + loadRes + COCOeval(iouType="segm") evaluate, accumulate,
  summarize, from the same annotations as COCO dicts;
- faster-coco-eval: the same with its COCO and COCOeval_faster.

For the COCOeval tools, "eval-only" is the evaluate+accumulate+summarize part alone
(without building the COCO index and loading the results), printed for transparency.

The 12 statistics of all three are compared (max absolute difference printed).
Writes bench/results/bench_evaluate.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RESULTS = Path(__file__).resolve().parent / "results"
N_CLASSES = 10


def _shape(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, int, int]:
    """A shape drawn in its own window; returns (window, top, left)."""
    ry, rx = rng.uniform(3, min(h, w) / 6, 2)
    if rng.random() < 0.3:
        rx = ry
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    top, left = int(max(cy - ry, 0)), int(max(cx - rx, 0))
    bottom, right = int(min(cy + ry + 1, h)), int(min(cx + rx + 1, w))
    yy, xx = np.ogrid[top:bottom, left:right]
    if rng.random() < 0.3:
        win = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    else:
        win = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if not win.any():
        win = np.ones((1, 1), bool)
        top, left = min(int(cy), h - 1), min(int(cx), w - 1)
    return np.asarray(win), top, left


def _grow(win: np.ndarray, steps: int) -> np.ndarray:
    out = np.pad(win, abs(steps))
    for _ in range(abs(steps)):
        p = np.pad(out, 1, constant_values=steps < 0)
        nb = [p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]]
        out = np.logical_or.reduce(nb) if steps > 0 else np.logical_and.reduce(nb)
    return out


def _encode(win: np.ndarray, top: int, left: int, h: int, w: int) -> dict[str, Any] | None:
    full = np.zeros((h, w), np.uint8, order="F")
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + win.shape[0], h), min(left + win.shape[1], w)
    if y1 <= y0 or x1 <= x0:
        return None
    full[y0:y1, x0:x1] = win[y0 - top : y1 - top, x0 - left : x1 - left]
    if not full.any():
        return None
    rle = mask_utils.encode(full)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def make_data(n_images: int, seed: int, cache: Path) -> dict[str, Any]:
    path = cache / f"evaluate-{n_images}-{seed}.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    rng = np.random.default_rng(seed)
    images, gts, preds = [], [], []
    for image_id in range(1, n_images + 1):
        h, w = (int(v) for v in rng.integers(256, 513, 2))
        images.append({"id": image_id, "height": h, "width": w})
        for _ in range(max(1, int(rng.poisson(10)))):
            win, top, left = _shape(rng, h, w)
            rle = _encode(win, top, left, h, w)
            assert rle is not None
            cat = int(rng.integers(1, N_CLASSES + 1))
            crowd = bool(rng.random() < 0.01)
            gts.append({"image_id": image_id, "category_id": cat, "segmentation": rle,
                        "area": float(win.sum()), "iscrowd": int(crowd)})  # fmt: skip
            if rng.random() < 0.08:
                continue  # dropped
            for copy in range(2 if rng.random() < 0.1 else 1):  # duplicated
                op = int(rng.integers(4))
                p_win, p_top, p_left = win, top, left
                if op in (0, 1):
                    steps = int(rng.integers(1, 4)) * (1 if op == 0 else -1)
                    p_win = _grow(win, steps)
                    p_top, p_left = top - abs(steps), left - abs(steps)
                elif op == 2 or copy:
                    dy, dx = (int(v) for v in rng.integers(-10, 11, 2))
                    p_top, p_left = top + dy, left + dx
                p_rle = _encode(p_win, p_top, p_left, h, w)
                if p_rle is None:
                    continue
                p_cat = int(rng.integers(1, N_CLASSES + 1)) if rng.random() < 0.08 else cat
                preds.append({"image_id": image_id, "category_id": p_cat,
                              "score": round(float(rng.random()), 3), "segmentation": p_rle})  # fmt: skip
        for _ in range(int(rng.poisson(0.5))):  # false positives
            win, top, left = _shape(rng, h, w)
            rle = _encode(win, top, left, h, w)
            assert rle is not None
            preds.append({"image_id": image_id, "category_id": int(rng.integers(1, N_CLASSES + 1)),
                          "score": round(float(rng.random()), 3), "segmentation": rle})  # fmt: skip
    for n, g in enumerate(gts):
        g["id"] = n + 1
        g["bbox"] = mask_utils.toBbox(g["segmentation"]).tolist()
    data = {
        "images": images,
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, N_CLASSES + 1)],
        "annotations": gts,
        "predictions": preds,
    }
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return data


def run_segmon(data: dict[str, Any]) -> Callable[[], tuple[float, ...]]:
    from monitor.quality.evaluation import GroundTruth, Prediction, evaluate

    gts = [GroundTruth(a["image_id"], a["category_id"], a["segmentation"], a["area"],
                       bool(a["iscrowd"]), a["id"]) for a in data["annotations"]]  # fmt: skip
    preds = [Prediction(p["image_id"], p["category_id"], p["score"], p["segmentation"])
             for p in data["predictions"]]  # fmt: skip
    categories = {c["id"]: c["name"] for c in data["categories"]}
    image_ids = [im["id"] for im in data["images"]]

    def run() -> tuple[float, ...]:
        return evaluate(gts, preds, categories, image_ids).coco.as_tuple()

    return run


def run_cocoeval(
    data: dict[str, Any], library: str, phases: list[float]
) -> Callable[[], tuple[float, ...]]:
    """COCOeval from COCO dicts; appends the evaluate+accumulate+summarize time to phases."""
    dataset = {k: data[k] for k in ("images", "categories", "annotations")}

    def run() -> tuple[float, ...]:
        results = [dict(p) for p in data["predictions"]]  # loadRes adds fields in place
        with contextlib.redirect_stdout(io.StringIO()):
            if library == "pycocotools":
                from pycocotools.coco import COCO
                from pycocotools.cocoeval import COCOeval

                gt = COCO()
                gt.dataset = dataset
                gt.createIndex()
                ev = COCOeval(gt, gt.loadRes(results), iouType="segm")
            else:
                from faster_coco_eval import COCO as FastCOCO
                from faster_coco_eval import COCOeval_faster

                gt = FastCOCO(dataset)
                ev = COCOeval_faster(
                    gt, gt.loadRes(results), iouType="segm", print_function=lambda *a: None
                )
            start = time.perf_counter()
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            phases.append(time.perf_counter() - start)
        return tuple(float(v) for v in ev.stats[:12])

    return run


def timed(
    fn: Callable[[], tuple[float, ...]], repeats: int
) -> tuple[list[float], tuple[float, ...]]:
    times, out = [], ()
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmon-bench"))
    parser.add_argument("--tools", nargs="+", default=["segmon", "faster-coco-eval", "pycocotools"])
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data = make_data(args.images, args.seed, args.cache)
    prep = time.perf_counter() - start
    n_gt, n_pred = len(data["annotations"]), len(data["predictions"])
    print(
        f"data: {args.images} images, {n_gt} ground truth, {n_pred} predictions ({prep:.1f}s to load/generate)"
    )

    phases: dict[str, list[float]] = {"faster-coco-eval": [], "pycocotools": []}
    runners = {
        "segmon": lambda: run_segmon(data),
        "faster-coco-eval": lambda: run_cocoeval(
            data, "faster-coco-eval", phases["faster-coco-eval"]
        ),
        "pycocotools": lambda: run_cocoeval(data, "pycocotools", phases["pycocotools"]),
    }
    rows: dict[str, dict[str, Any]] = {}
    stats: dict[str, tuple[float, ...]] = {}
    for tool in args.tools:
        times, stats[tool] = timed(runners[tool](), args.repeats)
        rows[tool] = {"median_s": statistics.median(times), "runs_s": times}
        if phases.get(tool):
            rows[tool]["evaluate_accumulate_summarize_median_s"] = statistics.median(phases[tool])
        print(
            f"  {tool}: median {rows[tool]['median_s']:.2f}s  runs {[round(t, 2) for t in times]}",
            flush=True,
        )
    reference = stats.get("pycocotools") or stats.get("faster-coco-eval")
    print()
    print(f"{'tool':<18} {'what':<44} {'median s':>9} {'eval-only s':>12} {'max |Δstats|':>13}")
    what = {
        "segmon": "full evaluation (AP + per-class + confusion)",
        "faster-coco-eval": "COCOeval_faster alone",
        "pycocotools": "COCOeval alone",
    }
    for tool, row in rows.items():
        diff = (
            max(abs(a - b) for a, b in zip(stats[tool], reference, strict=True))
            if reference
            else float("nan")
        )
        row["max_abs_stat_diff_vs_reference"] = diff
        only = row.get("evaluate_accumulate_summarize_median_s")
        only_s = f"{only:.2f}" if only is not None else "-"
        print(f"{tool:<18} {what[tool]:<44} {row['median_s']:>9.2f} {only_s:>12} {diff:>13.2e}")
    if "segmon" in rows and "faster-coco-eval" in rows:
        ratio = rows["segmon"]["median_s"] / rows["faster-coco-eval"]["median_s"]
        print(f"\nsegmon full / faster-coco-eval alone: {ratio:.2f} (target <= 1)")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "benchmark": "bench_evaluate",
        "images": args.images,
        "ground_truth": n_gt,
        "predictions": n_pred,
        "repeats": args.repeats,
        "seed": args.seed,
        "tools": rows,
        "stats": {k: list(v) for k, v in stats.items()},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    (RESULTS / "bench_evaluate.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'bench_evaluate.json'}")


if __name__ == "__main__":
    main()
