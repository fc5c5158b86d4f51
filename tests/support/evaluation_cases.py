"""Evaluation cases: generated multi-class scenes, perturbed real data, and pycocotools'
own COCOeval on them as the reference."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detectors._typing import MaskArray
from monitor.quality.evaluation import GroundTruth, Prediction
from tests.support.mask_arrays import decode, encode, shift
from tests.support.paths import BORRAT, skip_without_borrat


@dataclass
class Case:
    """Ground truth, predictions and the decoded masks, for one comparison."""

    categories: dict[int, str]
    image_ids: list[int]
    sizes: dict[int, tuple[int, int]]
    gts: list[GroundTruth]
    preds: list[Prediction]


def draw_shape(rng: np.random.Generator, h: int, w: int) -> MaskArray:
    """A disc, ellipse or box at a random place, clipped to the image."""
    yy, xx = np.ogrid[:h, :w]
    kind = rng.integers(3)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(3, h / 4), rng.uniform(3, w / 4)
    if kind == 0:
        rx = ry
    if kind == 2:
        mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    else:
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if not mask.any():
        mask[int(min(cy, h - 1)), int(min(cx, w - 1))] = True
    return np.asarray(mask)


def grow(mask: MaskArray, steps: int) -> MaskArray:
    """Dilate (steps > 0) or erode (steps < 0) with a 3x3 cross, in numpy."""
    out = mask.copy()
    for _ in range(abs(steps)):
        p = np.pad(out, 1, constant_values=steps < 0)
        nb = [p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]]
        out = np.logical_or.reduce(nb) if steps > 0 else np.logical_and.reduce(nb)
    return out


def perturb(
    rng: np.random.Generator,
    gts: Sequence[GroundTruth],
    categories: Sequence[int],
    sizes: dict[int, tuple[int, int]],
    image_ids: Sequence[int],
) -> list[Prediction]:
    """Predictions from ground truth: eroded, dilated, shifted, dropped, duplicated,
    relabeled, plus random false positives; scores random (with deliberate ties)."""
    preds: list[Prediction] = []
    for g in gts:
        scale = max(1, max(sizes[g.image_id]) // 128)  # larger moves on larger images
        r = rng.random()
        if r < 0.1:
            continue  # dropped
        mask = decode(g.rle)
        op = rng.integers(4)
        if op == 0:
            mask = grow(mask, -int(rng.integers(1, 3 + scale)))
        elif op == 1:
            mask = grow(mask, int(rng.integers(1, 3 + scale)))
        elif op == 2:
            mask = shift(mask, *(int(v) for v in rng.integers(-12 * scale, 12 * scale + 1, 2)))
        category = g.category_id
        if rng.random() < 0.1:
            category = int(rng.choice(categories))  # relabeled
        score = float(np.round(rng.random(), 1))  # rounding makes ties
        preds.append(Prediction(g.image_id, category, score, encode(mask)))
        if rng.random() < 0.15:  # duplicated
            dup = shift(mask, int(rng.integers(-3, 4)), int(rng.integers(-3, 4)))
            preds.append(
                Prediction(g.image_id, category, float(np.round(rng.random(), 1)), encode(dup))
            )
    for image_id in image_ids:
        for _ in range(int(rng.integers(0, 3))):  # false positives anywhere
            h, w = sizes[image_id]
            preds.append(
                Prediction(
                    image_id,
                    int(rng.choice(categories)),
                    float(rng.random()),
                    encode(draw_shape(rng, h, w)),
                )
            )
    order = rng.permutation(len(preds))
    return [preds[i] for i in order]


def generated_case(seed: int, n_images: int = 30, n_classes: int = 4) -> Case:
    """Overlapping discs, ellipses and boxes of several classes, some crowd regions, on
    images of varied size; two images have no ground truth."""
    rng = np.random.default_rng(seed)
    categories = {k + 1: f"class{k + 1}" for k in range(n_classes)}
    image_ids = list(range(1, n_images + 1))
    sizes: dict[int, tuple[int, int]] = {}
    gts: list[GroundTruth] = []
    for image_id in image_ids:
        h, w = int(rng.integers(60, 200)), int(rng.integers(60, 200))
        sizes[image_id] = (h, w)
        if image_id <= 2:
            continue
        for _ in range(int(rng.integers(1, 9))):
            mask = draw_shape(rng, h, w)
            gts.append(
                GroundTruth(
                    image_id,
                    int(rng.integers(1, n_classes + 1)),
                    encode(mask),
                    area=float(mask.sum()),
                    iscrowd=bool(rng.random() < 0.05),
                    annotation_id=len(gts),  # starts at 0 on purpose
                )
            )
    preds = perturb(rng, gts, list(categories), sizes, image_ids)
    return Case(categories, image_ids, sizes, gts, preds)


def borrat_case(seed: int) -> Case:
    """The real Borrat validation split with predictions perturbed from its ground truth."""
    path = BORRAT / "valid" / "_annotations.coco.json"
    skip_without_borrat(path)
    data = json.loads(path.read_text())
    categories = {c["id"]: c["name"] for c in data["categories"]}
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    gts: list[GroundTruth] = []
    for ann in data["annotations"]:
        h, w = sizes[ann["image_id"]]
        seg = ann["segmentation"]
        rle = (
            mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            if isinstance(seg, list)
            else (mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg)
        )
        counts = rle["counts"]
        gts.append(
            GroundTruth(
                ann["image_id"],
                ann["category_id"],
                {
                    "size": [h, w],
                    "counts": counts.decode() if isinstance(counts, bytes) else counts,
                },
                area=float(ann["area"]),
                iscrowd=bool(ann.get("iscrowd", 0)),
                annotation_id=ann["id"],
            )
        )
    image_ids = sorted(sizes)
    rng = np.random.default_rng(seed)
    preds = perturb(rng, gts, list(categories), sizes, image_ids)
    return Case(categories, image_ids, sizes, gts, preds)


def pycocotools_eval(case: Case) -> COCOeval | None:
    """pycocotools' COCOeval(iouType="segm") on the case, ids renumbered from 1."""
    dataset = {
        "images": [
            {"id": i, "height": case.sizes[i][0], "width": case.sizes[i][1]} for i in case.image_ids
        ],
        "categories": [{"id": c, "name": n} for c, n in case.categories.items()],
        "annotations": [
            {
                "id": n + 1,
                "image_id": g.image_id,
                "category_id": g.category_id,
                "segmentation": copy.deepcopy(dict(g.rle)),
                "area": g.area,
                "iscrowd": int(g.iscrowd),
                "bbox": mask_utils.toBbox(dict(g.rle)).tolist(),
            }
            for n, g in enumerate(case.gts)
        ],
    }
    known = set(case.image_ids)
    results = [
        {
            "image_id": p.image_id,
            "category_id": p.category_id,
            "score": p.score,
            "segmentation": dict(p.rle),
        }
        for p in case.preds
        if p.image_id in known
    ]
    if not results:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev
