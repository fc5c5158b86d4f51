"""COCO mask AP equals pycocotools' COCOeval(iouType="segm") on the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from monitor.quality.evaluation import GroundTruth, Prediction, evaluate
from tests.support.evaluation_cases import Case, borrat_case, generated_case, pycocotools_eval

TOL = 1e-9


def assert_matches_pycocotools(case: Case) -> None:
    report = evaluate(case.gts, case.preds, case.categories, case.image_ids)
    reference = pycocotools_eval(case)
    assert reference is not None
    ours = report.coco.as_tuple()
    assert len(ours) == 12
    np.testing.assert_allclose(ours, reference.stats, rtol=0, atol=TOL)
    # Per-class AP: COCOeval's precision for that class, area "all", 100 detections.
    precision = reference.eval["precision"]
    for k, cat in enumerate(reference.params.catIds):
        quality = report.class_quality(cat)
        for got, p in (
            (quality.ap, precision[:, :, k, 0, -1]),
            (quality.ap50, precision[0, :, k, 0, -1]),
            (quality.ap75, precision[5, :, k, 0, -1]),
        ):
            valid = p[p > -1]
            if valid.size == 0:
                assert got is None
            else:
                assert got is not None and abs(got - float(np.mean(valid))) <= TOL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_multiclass_scenes_match_pycocotools(seed: int) -> None:
    case = generated_case(seed)
    assert_matches_pycocotools(case)


def test_generated_fixture_has_what_the_comparison_needs() -> None:
    case = generated_case(0)
    assert len({g.category_id for g in case.gts}) >= 3
    assert any(g.iscrowd for g in case.gts)
    assert {p.image_id for p in case.preds} - {g.image_id for g in case.gts}  # images without GT
    assert len({p.score for p in case.preds}) < len(case.preds)  # score ties


def test_many_small_classes_match_pycocotools() -> None:
    assert_matches_pycocotools(generated_case(7, n_images=25, n_classes=8))


@pytest.mark.parametrize("seed", [0, 1])
def test_borrat_valid_with_perturbed_predictions_matches_pycocotools(seed: int) -> None:
    assert_matches_pycocotools(borrat_case(seed))


def test_generated_scenes_of_monitor_synth_match_pycocotools(tmp_path: Path) -> None:
    synth = pytest.importorskip(
        "monitor.synth", reason="monitor.synth (the scene generator) is not on this branch yet"
    )
    summary = synth.generate_scenes(tmp_path, synth.SynthConfig(n_images=30, seed=11, size=128))
    coco = json.loads(Path(summary.annotations).read_text())
    by_file = {im["file_name"]: im for im in coco["images"]}
    gts = [
        GroundTruth(a["image_id"], a["category_id"], a["segmentation"], float(a["area"]),
                    bool(a["iscrowd"]), a["id"])
        for a in coco["annotations"]
    ]  # fmt: skip
    preds = []
    for line in Path(summary.samples).read_text().splitlines():
        record = json.loads(line)
        image_id = by_file[Path(record["image"]).name]["id"]
        for inst in record["instances"]:
            preds.append(
                Prediction(image_id, inst["category_id"], inst["score"], inst["segmentation"])
            )
    case = Case(
        categories={c["id"]: c["name"] for c in coco["categories"]},
        image_ids=sorted(by_file[f]["id"] for f in by_file),
        sizes={im["id"]: (im["height"], im["width"]) for im in coco["images"]},
        gts=gts,
        preds=preds,
    )
    assert len(case.categories) >= 3 and preds
    assert_matches_pycocotools(case)


def test_dataset_scored_against_itself_gives_ap_one_with_annotation_ids_from_zero() -> None:
    case = generated_case(3)
    gts = [
        GroundTruth(g.image_id, g.category_id, g.rle, g.area, False, annotation_id=n)
        for n, g in enumerate(case.gts)
    ]
    assert gts[0].annotation_id == 0
    preds = [Prediction(g.image_id, g.category_id, 1.0, g.rle) for g in gts]
    report = evaluate(gts, preds, case.categories, case.image_ids)
    assert report.coco.ap == 1.0
    assert report.coco.ap50 == 1.0 and report.coco.ap75 == 1.0
    assert report.overall.recall == 1.0 and report.overall.precision == 1.0
    assert all(q.ap in (1.0, None) for q in report.per_class)


def test_borrat_scored_against_itself_gives_ap_one_with_annotation_ids_from_zero() -> None:
    case = borrat_case(0)
    gts = [
        GroundTruth(g.image_id, g.category_id, g.rle, g.area, g.iscrowd, annotation_id=n)
        for n, g in enumerate(case.gts)
    ]
    preds = [Prediction(g.image_id, g.category_id, 1.0, g.rle) for g in gts if not g.iscrowd]
    report = evaluate(gts, preds, case.categories, case.image_ids)
    assert report.coco.ap == 1.0


def test_only_the_100_best_predictions_per_image_and_class_count() -> None:
    """COCOeval keeps dt[0:maxDets[-1]]: 101 predictions of one class on one image."""
    square = np.zeros((10, 10), dtype=np.uint8, order="F")
    square[2:6, 2:6] = 1
    encoded = mask_utils.encode(square)
    rle = {"size": [10, 10], "counts": encoded["counts"].decode()}
    case = Case(
        gts=[GroundTruth(1, 1, rle, area=16.0, annotation_id=1)],
        preds=[Prediction(1, 1, 1.0 - i / 1000, rle) for i in range(101)]
        + [Prediction(1, 1, 0.001, rle)],
        categories={1: "thing"},
        image_ids=[1],
        sizes={1: (10, 10)},
    )
    report = evaluate(case.gts, case.preds, case.categories, case.image_ids)
    assert report.coco.ap == 1.0
    assert report.class_quality(1).false_positives == 101  # the per-class table sees all
    assert_matches_pycocotools(case)
