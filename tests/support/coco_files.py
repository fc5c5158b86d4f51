"""COCO ground-truth and results files: generated edge cases, peer fixtures, pycocotools.

The generated cases are the traps a results file sets for an evaluator that is exact in
its pure core but not on the user's path: ids starting at 0, images listed out of id
order with tied scores across them, stated areas that disagree with the masks, crowd
regions as uncompressed RLE, more than 100 detections of one class on one image, empty
masks, 1 x N images, images and categories without ground truth, and results that carry
a ``bbox`` (pycocotools then takes every result's area from its box).

Peer projects' own segm fixtures (faster-coco-eval's and cocoapi's test data, the
detectron2 test fixture written out as JSON) are not committed here; tests read them
from ``$SEGMON_PEER_FIXTURES`` or ``../shared/data/coco-peer-fixtures/`` and skip with a
reason where they are absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.support.paths import REPO

PEER_ENV = "SEGMON_PEER_FIXTURES"
PEER_DEFAULT = REPO.parent / "shared" / "data" / "coco-peer-fixtures"


def peer_fixture(*parts: str) -> Path:
    """Return a peer fixture's path, or skip the test saying where it is looked for."""
    root = Path(os.environ.get(PEER_ENV, PEER_DEFAULT))
    path = root.joinpath(*parts)
    if not path.is_file():
        pytest.skip(
            f"peer fixture {'/'.join(parts)} not found under {root} (set {PEER_ENV}); "
            "peers' test data is not committed to segmon"
        )
    return path


def rle(mask: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Compressed RLE of a boolean mask, counts as text (as results files hold them)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode()}


def uncompressed_rle(mask: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Uncompressed (column-major) RLE, the form COCO uses for crowd regions."""
    flat = mask.astype(np.uint8).ravel(order="F")
    counts: list[int] = []
    value, run = 0, 0
    for pixel in flat.tolist():
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def _shape(rng: np.random.Generator, h: int, w: int) -> np.ndarray[Any, Any]:
    mask = np.zeros((h, w), dtype=bool)
    y0, x0 = int(rng.integers(0, max(1, h - 1))), int(rng.integers(0, max(1, w - 1)))
    y1 = int(rng.integers(y0 + 1, h + 1))
    x1 = int(rng.integers(x0 + 1, w + 1))
    mask[y0:y1, x0:x1] = True
    return mask


@dataclass
class CocoCase:
    """A ground-truth file and a results file, as plain JSON documents."""

    gt: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``gt.json`` and ``results.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        gt, res = folder / "gt.json", folder / "results.json"
        gt.write_text(json.dumps(self.gt))
        res.write_text(json.dumps(self.results))
        return gt, res


def generated_case(
    seed: int,
    *,
    n_images: int = 6,
    zero_based: bool = True,
    with_boxes: bool = False,
    crowded: bool = True,
    many: bool = False,
) -> CocoCase:
    """A seeded case with every trap named in this module's docstring (switchable).

    Image ids are shuffled in the ``images`` list; every prediction's score is drawn
    from a few values, so ties across images are common; stated areas are the mask
    area times a factor in [0.25, 4], so some cross COCO's size boundaries.
    """
    rng = np.random.default_rng(seed)
    base = 0 if zero_based else 1
    categories = [{"id": base + k, "name": f"class{k}", "supercategory": ""} for k in range(4)]
    sizes = [(48, 64), (1, 40), (96, 96), (40, 1), (120, 80), (64, 48)]
    ids = [base + i for i in range(n_images)]
    images: list[dict[str, Any]] = [
        {"id": i, "file_name": f"img{i}.png", "height": sizes[i % 6][0], "width": sizes[i % 6][1]}
        for i in ids
    ]
    order = rng.permutation(len(images))
    images = [images[int(k)] for k in order]
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    scores = [0.3, 0.5, 0.5, 0.9]
    for image in images:
        h, w = image["height"], image["width"]
        if image["id"] == ids[-1]:
            continue  # an image without ground truth
        for _ in range(int(rng.integers(1, 4))):
            cat = int(rng.integers(0, 3)) + base  # the last category has no ground truth
            mask = _shape(rng, h, w)
            crowd = crowded and h > 8 and w > 8 and rng.random() < 0.2
            annotations.append(
                {
                    "id": base + len(annotations),
                    "image_id": image["id"],
                    "category_id": cat,
                    "segmentation": uncompressed_rle(mask) if crowd else rle(mask),
                    "area": float(mask.sum()) * float(rng.choice([0.25, 1.0, 4.0])),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle_bytes(mask))],
                    "iscrowd": int(crowd),
                }
            )
            for _ in range(int(rng.integers(0, 3))):
                guess = mask if rng.random() < 0.6 else _shape(rng, h, w)
                results.append(_result(image["id"], cat, guess, float(rng.choice(scores))))
    for image in images:  # false positives, empty masks, a class without ground truth
        h, w = image["height"], image["width"]
        results.append(_result(image["id"], base + 3, _shape(rng, h, w), 0.5))
        results.append(_result(image["id"], base, np.zeros((h, w), dtype=bool), 0.4))
    if many:  # 101+ detections of one class on one image
        image = next(i for i in images if i["height"] > 8 and i["width"] > 8)
        mask = _shape(rng, image["height"], image["width"])
        for k in range(105):
            results.append(_result(image["id"], base + 1, mask, 1.0 - k / 1000))
    if with_boxes:
        for r in results:
            r["bbox"] = [float(v) * 1.5 for v in mask_utils.toBbox(r["segmentation"])]
    else:
        for r in results:
            r.pop("bbox", None)
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return CocoCase(gt, results)


def rle_bytes(mask: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Compressed RLE as pycocotools returns it (counts as bytes)."""
    encoded: dict[str, Any] = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return encoded


def _result(
    image_id: int, category_id: int, mask: np.ndarray[Any, Any], score: float
) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": rle(mask),
        "score": score,
    }


def pycocotools_stats(
    gt_path: Path, results_path: Path, *, renumber_annotations: bool = True
) -> list[float]:
    """COCOeval(iouType="segm").stats on the two files, as pycocotools computes them.

    With ``renumber_annotations`` (the default), ground-truth annotation ids are first
    numbered 1..n, as segmon does at import: pycocotools takes annotation id 0 for
    "unmatched" and silently drops that match (segmon's one deliberate difference on
    well-formed files; ``test_annotation_id_0_is_renumbered_so_it_can_match`` pins it).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        doc = json.loads(gt_path.read_text())
        if renumber_annotations:
            for number, ann in enumerate(doc["annotations"], start=1):
                ann["id"] = number
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        results = json.loads(results_path.read_text())
        dt = gt.loadRes(results) if results else COCO()
        evaluator = COCOeval(gt, dt, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats]
