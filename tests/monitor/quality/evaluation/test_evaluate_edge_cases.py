"""Edge cases give defined, documented results, and nothing in a report is ever NaN."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from monitor.errors import ConfigError, InvalidInputError, NotFoundError
from monitor.quality.evaluation import (
    GroundTruth,
    Prediction,
    PredictionStatus,
    QualityReport,
    evaluate,
)
from tests.support.evaluation_cases import generated_case, pycocotools_eval
from tests.support.mask_arrays import encode


def floats_in(value: object) -> list[float]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            f for field in dataclasses.fields(value) for f in floats_in(getattr(value, field.name))
        ]
    if isinstance(value, tuple | list):
        return [f for v in value for f in floats_in(v)]
    return [value] if isinstance(value, float) else []


def assert_no_nan(report: QualityReport) -> None:
    values = floats_in(report)
    assert values, "the walker found no floats"
    assert all(math.isfinite(v) for v in values)


def box(h: int, w: int, y: int, x: int, bh: int, bw: int) -> dict[str, Any]:
    m = np.zeros((h, w), bool)
    m[y : y + bh, x : x + bw] = True
    return encode(m)


def test_empty_predictions_miss_everything() -> None:
    case = generated_case(0)
    report = evaluate(case.gts, [], case.categories, case.image_ids)
    assert_no_nan(report)
    assert report.overall.true_positives == 0 and report.overall.false_positives == 0
    assert report.overall.recall == 0.0
    assert report.overall.precision is None and report.overall.f1 is None
    assert report.overall.mean_iou is None
    assert report.overall.false_positives_per_image == 0.0
    assert report.overall.false_negatives == report.overall.n_ground_truth > 0
    assert report.coco.ap == 0.0 and report.coco.ar100 == 0.0
    assert all(q.ap == 0.0 for q in report.per_class if q.n_ground_truth)
    assert sum(row[-1] for row in report.confusion.counts) == report.overall.n_ground_truth


def test_predictions_on_images_without_ground_truth_are_false_positives() -> None:
    gts = [GroundTruth(1, 1, box(32, 32, 0, 0, 8, 8), area=64.0)]
    preds = [
        Prediction(1, 1, 0.9, box(32, 32, 0, 0, 8, 8)),
        Prediction(2, 1, 0.8, box(32, 32, 0, 0, 8, 8)),  # image 2 has no GT
        Prediction(3, 1, 0.7, box(32, 32, 4, 4, 8, 8)),  # image 3 neither
    ]
    report = evaluate(gts, preds, {1: "a"}, image_ids=[1, 2, 3])
    assert_no_nan(report)
    assert report.n_images == 3 and report.n_images_without_ground_truth == 2
    assert report.overall.true_positives == 1 and report.overall.false_positives == 2
    assert report.overall.false_positives_per_image == pytest.approx(2 / 3)
    assert [s.value for s in report.instances.prediction_status] == [
        "true_positive",
        "false_positive",
        "false_positive",
    ]
    # The first prediction ranks first, so AP50 is 1.0; the false positives come later.
    assert report.coco.ap50 == 1.0


def test_a_class_absent_from_the_holdout_is_reported_without_ap() -> None:
    case = generated_case(1)
    categories = {**case.categories, 99: "absent"}
    extra = [Prediction(case.gts[0].image_id, 99, 0.95, case.gts[0].rle)]
    case.categories, case.preds = categories, case.preds + extra
    report = evaluate(case.gts, case.preds, categories, case.image_ids)
    assert_no_nan(report)
    absent = report.class_quality(99)
    assert absent.n_ground_truth == 0 and absent.recall is None and absent.f1 is None
    assert absent.ap is None and absent.ap50 is None and absent.ap75 is None
    assert absent.false_positives == 1 and absent.precision == 0.0
    assert report.confusion.column_names[-2:] == ("absent", "missed")
    # COCO means skip the class (COCOeval's -1), exactly as pycocotools does.
    reference = pycocotools_eval(case)
    assert reference is not None
    np.testing.assert_allclose(report.coco.as_tuple(), reference.stats, rtol=0, atol=1e-9)


def test_predictions_for_unknown_images_are_ignored_and_counted() -> None:
    case = generated_case(2)
    stray = [
        Prediction(10_000 + n, p.category_id, p.score, p.rle) for n, p in enumerate(case.preds[:5])
    ]
    base = evaluate(case.gts, case.preds, case.categories, case.image_ids)
    report = evaluate(case.gts, stray + case.preds, case.categories, case.image_ids)
    assert report.n_unknown_image_predictions == 5 and base.n_unknown_image_predictions == 0
    assert report.instances.prediction_status[:5] == (PredictionStatus.UNKNOWN_IMAGE,) * 5
    assert report.coco == base.coco and report.overall == base.overall
    assert report.per_class == base.per_class and report.confusion == base.confusion


def test_predictions_of_unknown_classes_are_ignored_and_counted() -> None:
    case = generated_case(2)
    stray = [Prediction(p.image_id, 1234, 1.0, p.rle) for p in case.preds[:3]]
    base = evaluate(case.gts, case.preds, case.categories, case.image_ids)
    report = evaluate(case.gts, case.preds + stray, case.categories, case.image_ids)
    assert report.n_unknown_category_predictions == 3
    assert report.instances.prediction_status[-3:] == (PredictionStatus.UNKNOWN_CATEGORY,) * 3
    assert report.coco == base.coco and report.overall == base.overall


def test_no_ground_truth_at_all_leaves_coco_stats_undefined() -> None:
    preds = [Prediction(1, 1, 0.5, box(16, 16, 0, 0, 4, 4))]
    report = evaluate([], preds, {1: "a", 2: "b"}, image_ids=[1, 2])
    assert_no_nan(report)
    assert all(v is None for v in dataclasses.astuple(report.coco))
    assert report.overall.recall is None and report.overall.precision == 0.0
    assert report.n_images_without_ground_truth == 2


def test_nothing_at_all_gives_an_empty_but_defined_report() -> None:
    report = evaluate([], [], {1: "a"}, image_ids=[])
    assert report.n_images == 0
    assert report.overall.false_positives_per_image is None
    assert report.overall.precision is None and report.overall.recall is None
    assert report.confusion.counts == ((0, 0),)
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in floats_in(report))


def test_crowd_regions_absorb_predictions() -> None:
    gts = [
        GroundTruth(1, 1, box(40, 40, 0, 0, 10, 10), area=100.0),
        GroundTruth(1, 1, box(40, 40, 20, 20, 20, 20), area=400.0, iscrowd=True),
    ]
    preds = [
        Prediction(1, 1, 0.9, box(40, 40, 0, 0, 10, 10)),
        Prediction(1, 1, 0.8, box(40, 40, 22, 22, 6, 6)),  # inside the crowd region
        Prediction(1, 1, 0.7, box(40, 40, 0, 30, 5, 5)),  # on nothing
    ]
    report = evaluate(gts, preds, {1: "a"}, image_ids=[1])
    q = report.class_quality(1)
    assert (q.true_positives, q.crowd_predictions, q.false_positives) == (1, 1, 1)
    assert q.n_ground_truth == 1 and q.n_crowd == 1 and q.recall == 1.0
    assert report.instances.prediction_status[1] is PredictionStatus.CROWD
    assert report.confusion.counts == ((1, 0),)  # the crowd region is not a row entry


def test_invalid_inputs_are_refused_with_the_offending_value() -> None:
    rle = box(8, 8, 0, 0, 2, 2)
    gt = GroundTruth(1, 1, rle, area=4.0)
    with pytest.raises(ConfigError, match="1.5"):
        evaluate([gt], [], {1: "a"}, [1], iou_threshold=1.5)
    with pytest.raises(InvalidInputError, match="image 7"):
        evaluate([GroundTruth(7, 1, rle, 4.0)], [], {1: "a"}, [1])
    with pytest.raises(InvalidInputError, match="category 5"):
        evaluate([GroundTruth(1, 5, rle, 4.0)], [], {1: "a"}, [1])
    with pytest.raises(InvalidInputError, match="nan"):
        evaluate([gt], [Prediction(1, 1, float("nan"), rle)], {1: "a"}, [1])
    with pytest.raises(InvalidInputError, match=r"image 1 differ in size: \[9, 9\]"):
        evaluate([gt], [Prediction(1, 1, 0.5, box(9, 9, 0, 0, 2, 2))], {1: "a"}, [1])
    with pytest.raises(InvalidInputError, match="size"):
        evaluate([GroundTruth(1, 1, {"counts": "x"}, 4.0)], [], {1: "a"}, [1])
    with pytest.raises(NotFoundError, match="42"):
        evaluate([gt], [], {1: "a"}, [1]).class_quality(42)
