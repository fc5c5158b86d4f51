"""Per-class IoU, precision, recall, sizes and confusions equal an independent computation
that decodes the masks to pixels and matches them itself (COCO rules, written out)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from detectors._typing import MaskArray
from monitor.quality.evaluation import PredictionStatus, evaluate
from tests.support.evaluation_cases import Case, generated_case
from tests.support.mask_arrays import decode


def pixel_iou(pred: MaskArray, gt: MaskArray, crowd: bool) -> float:
    inter = float(np.logical_and(pred, gt).sum())
    denom = float(pred.sum()) if crowd else float(np.logical_or(pred, gt).sum())
    return inter / denom if denom else 0.0


def reference_metrics(case: Case, threshold: float) -> dict[str, Any]:
    """Greedy COCO matching on decoded masks, per image and class."""
    gt_masks = [decode(g.rle) for g in case.gts]
    known = set(case.image_ids)
    pred_idx = [
        j
        for j, p in enumerate(case.preds)
        if p.image_id in known and p.category_id in case.categories
    ]
    pred_masks = {j: decode(case.preds[j].rle) for j in pred_idx}
    status = {j: "fp" for j in pred_idx}
    gt_iou: dict[int, float] = {}
    cap = min(threshold, 1 - 1e-10)
    for image in case.image_ids:
        for cat in case.categories:
            gs = [n for n, g in enumerate(case.gts) if g.image_id == image and g.category_id == cat]
            gs.sort(key=lambda n: case.gts[n].iscrowd)  # non-crowd first, stable
            ds = [
                j
                for j in pred_idx
                if case.preds[j].image_id == image and case.preds[j].category_id == cat
            ]
            ds.sort(key=lambda j: -case.preds[j].score)  # stable: ties in input order
            taken: set[int] = set()
            for j in ds:
                best, match = cap, -1
                for n in gs:
                    crowd = case.gts[n].iscrowd
                    if n in taken and not crowd:
                        continue
                    if match >= 0 and not case.gts[match].iscrowd and crowd:
                        break
                    iou = pixel_iou(pred_masks[j], gt_masks[n], crowd)
                    if iou < best:
                        continue
                    best, match = iou, n
                if match < 0:
                    continue
                taken.add(match)
                if case.gts[match].iscrowd:
                    status[j] = "crowd"
                else:
                    status[j] = "tp"
                    gt_iou[match] = best
    per_class: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    for n, g in enumerate(case.gts):
        if g.iscrowd:
            continue
        c = per_class[g.category_id]
        c["n_gt"] += 1
        bucket = "small" if g.area < 32**2 else "medium" if g.area < 96**2 else "large"
        c[f"n_{bucket}"] += 1
        if n in gt_iou:
            c["iou_sum"] += gt_iou[n]
            c[f"tp_{bucket}"] += 1
    for j, s in status.items():
        per_class[case.preds[j].category_id][s] += 1
    # Confusion: best overlap of any class per non-crowd ground truth.
    confusion: dict[tuple[int, int | None], int] = defaultdict(int)
    for n, g in enumerate(case.gts):
        if g.iscrowd:
            continue
        ds = [j for j in pred_idx if case.preds[j].image_id == g.image_id]
        ds.sort(key=lambda j: -case.preds[j].score)
        best, best_j = -1.0, None
        for j in ds:
            iou = pixel_iou(pred_masks[j], gt_masks[n], False)
            if iou > best:
                best, best_j = iou, j
        hit = best_j is not None and best >= cap
        confusion[
            g.category_id, case.preds[best_j].category_id if hit and best_j is not None else None
        ] += 1
    return {"per_class": per_class, "status": status, "gt_iou": gt_iou, "confusion": confusion}


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.5), (1, 0.75), (2, 0.3), (4, 0.5)])
def test_per_class_metrics_equal_pixel_level_matching(seed: int, threshold: float) -> None:
    case = generated_case(seed)
    report = evaluate(
        case.gts, case.preds, case.categories, case.image_ids, iou_threshold=threshold
    )
    ref = reference_metrics(case, threshold)
    n_images = len(case.image_ids)
    for cat in case.categories:
        got = report.class_quality(cat)
        want = ref["per_class"][cat]
        tp, fp, n_gt = int(want["tp"]), int(want["fp"]), int(want["n_gt"])
        assert (got.true_positives, got.false_positives, got.n_ground_truth) == (tp, fp, n_gt)
        assert got.crowd_predictions == int(want["crowd"])
        assert got.false_negatives == n_gt - tp
        assert got.precision == (pytest.approx(tp / (tp + fp), abs=1e-12) if tp + fp else None)
        assert got.recall == (pytest.approx(tp / n_gt, abs=1e-12) if n_gt else None)
        assert got.mean_iou == (pytest.approx(want["iou_sum"] / tp, abs=1e-12) if tp else None)
        assert got.false_positives_per_image == pytest.approx(fp / n_images, abs=1e-12)
        for bucket in ("small", "medium", "large"):
            size = getattr(got.recall_by_size, bucket)
            assert size.n_ground_truth == int(want[f"n_{bucket}"])
            assert size.true_positives == int(want[f"tp_{bucket}"])
        for pred_cat in [*case.categories, None]:
            assert report.confusion.count(cat, pred_cat) == ref["confusion"][cat, pred_cat]
    total_tp = sum(int(v["tp"]) for v in ref["per_class"].values())
    assert report.overall.true_positives == total_tp
    assert report.overall.mean_iou == pytest.approx(
        sum(ref["gt_iou"].values()) / total_tp, abs=1e-12
    )


def test_instance_outcomes_equal_pixel_level_matching() -> None:
    case = generated_case(5)
    report = evaluate(case.gts, case.preds, case.categories, case.image_ids)
    ref = reference_metrics(case, 0.5)
    names = {
        "tp": PredictionStatus.TRUE_POSITIVE,
        "fp": PredictionStatus.FALSE_POSITIVE,
        "crowd": PredictionStatus.CROWD,
    }
    for j, s in ref["status"].items():
        assert report.instances.prediction_status[j] is names[s]
    for n in range(len(case.gts)):
        matched = report.instances.ground_truth_prediction[n]
        if n in ref["gt_iou"]:
            assert matched is not None
            assert report.instances.prediction_status[matched] is PredictionStatus.TRUE_POSITIVE
            assert case.preds[matched].image_id == case.gts[n].image_id
            assert report.instances.ground_truth_iou[n] == pytest.approx(
                ref["gt_iou"][n], abs=1e-12
            )
        else:
            assert matched is None and report.instances.ground_truth_iou[n] is None


def test_a_higher_threshold_never_matches_more() -> None:
    case = generated_case(6)
    tps = [
        evaluate(
            case.gts, case.preds, case.categories, case.image_ids, iou_threshold=t
        ).overall.true_positives
        for t in (0.3, 0.5, 0.7, 0.9)
    ]
    assert tps == sorted(tps, reverse=True) and tps[0] > tps[-1]
