from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import Float64Array, ImageArray, MaskArray
from monitor.clock import ManualClock
from monitor.config import IngestSettings
from monitor.errors import InvalidInputError, NotFoundError
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.masks import to_compressed
from monitor.model.protocol import Embeddings, InstancePrediction
from monitor.quality.job import evaluate_holdout
from monitor.storage.schema import ClassQualityRow, QualityResult
from monitor.synth import SynthConfig, generate_scenes

CLOCK = ManualClock(datetime(2026, 11, 25, tzinfo=UTC))


def pycocotools_stats(gt_path: Path, results: list[dict[str, Any]]) -> Float64Array:
    """Independent reference: pycocotools' own COCOeval on the files."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(results) if results else COCO()
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats: Float64Array = ev.stats
    return stats


def log_as_results(scenes: Path) -> list[dict[str, Any]]:
    """The sample log's predictions as a COCO results list over the holdout's image ids."""
    coco_gt = json.loads((scenes / "annotations.json").read_text())
    ids = {img["file_name"].rsplit(".", 1)[0]: img["id"] for img in coco_gt["images"]}
    return [
        {
            "image_id": ids[line["request_id"]],
            **{k: inst[k] for k in ("category_id", "score", "segmentation")},
        }
        for line in map(json.loads, (scenes / "samples.jsonl").read_text().splitlines())
        for inst in line["instances"]
    ]


@pytest.fixture
def scenes_dir(tmp_path: Path) -> Path:
    """Twelve generated scenes, blurred: the holdout and its golden requests."""
    out = tmp_path / "scenes"
    generate_scenes(out, SynthConfig(n_images=12, seed=3, size=96, drift={"blur": 0.6}))
    return out


def test_golden_requests_are_evaluated_per_model_version(
    sessions: sessionmaker[Session], scenes_dir: Path
) -> None:
    import_holdout(sessions, scenes_dir / "annotations.json", scenes_dir / "images", "h", CLOCK)
    # the same images: golden requests
    ingest_log(sessions, str(scenes_dir), IngestSettings(), CLOCK)
    report = evaluate_holdout(sessions, "h", CLOCK)
    assert [(p.model_version, len(p.image_ids)) for _, p, _ in report.results] == [
        ("prod-2026.11.1", 12)
    ]
    # the same predictions, as a COCO results file, scored by pycocotools itself
    expected = pycocotools_stats(scenes_dir / "annotations.json", log_as_results(scenes_dir))
    with sessions() as s:
        row = s.scalars(select(QualityResult)).one()
        classes = s.scalars(select(ClassQualityRow).order_by(ClassQualityRow.category_id)).all()
    assert row.ap == pytest.approx(expected[0], abs=1e-9) and row.ap50 == pytest.approx(
        expected[1], abs=1e-9
    )
    assert row.report["coco"]["ap75"] == pytest.approx(expected[2], abs=1e-9)
    assert row.prediction_source == "production" and row.n_images == 12
    assert sum(c.n_ground_truth for c in classes) == row.n_ground_truth
    assert all(c.true_positives + c.false_negatives == c.n_ground_truth for c in classes)
    assert "nan" not in json.dumps(row.report).lower()


def test_results_file_scored_against_itself_gives_ap_1_even_with_ids_from_0(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    scenes = tmp_path / "s"
    generate_scenes(scenes, SynthConfig(n_images=6, seed=5, size=96))
    doc = json.loads((scenes / "annotations.json").read_text())
    for i, ann in enumerate(doc["annotations"]):
        ann["id"] = i  # annotation ids from 0, which pycocotools would mis-score
    (scenes / "zero.json").write_text(json.dumps(doc))
    import_holdout(sessions, scenes / "zero.json", scenes / "images", "zero", CLOCK)
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "score": 1.0,
            "segmentation": a["segmentation"],
        }
        for a in doc["annotations"]
    ]
    (tmp_path / "self.json").write_text(json.dumps(results))
    report = evaluate_holdout(
        sessions, "zero", CLOCK, predictions=tmp_path / "self.json", model_version="self"
    )
    (_, preds, quality) = report.results[0]
    assert preds.model_version == "self"
    assert (
        quality.coco.ap == 1.0
        and quality.overall.recall == 1.0
        and quality.overall.precision == 1.0
    )


def test_clear_errors(sessions: sessionmaker[Session], scenes_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        evaluate_holdout(sessions, "nope", CLOCK)
    import_holdout(sessions, scenes_dir / "annotations.json", scenes_dir / "images", "h", CLOCK)
    with pytest.raises(NotFoundError, match="golden requests"):
        evaluate_holdout(sessions, "h", CLOCK)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"image_id": 999, "category_id": 1, "score": 0.5, "segmentation": []}])
    )
    with pytest.raises(InvalidInputError, match="image_id 999"):
        evaluate_holdout(sessions, "h", CLOCK, predictions=bad)
    with pytest.raises(InvalidInputError, match="iou_threshold"):
        evaluate_holdout(sessions, "h", CLOCK, predictions=bad, iou_threshold=0)


def test_empty_predictions_store_defined_values(
    sessions: sessionmaker[Session], scenes_dir: Path, tmp_path: Path
) -> None:
    import_holdout(sessions, scenes_dir / "annotations.json", scenes_dir / "images", "h", CLOCK)
    (tmp_path / "none.json").write_text("[]")
    evaluate_holdout(sessions, "h", CLOCK, predictions=tmp_path / "none.json")
    with sessions() as s:
        row = s.scalars(select(QualityResult)).one()
        classes = s.scalars(select(ClassQualityRow)).all()
    assert (row.n_predictions, row.precision, row.recall) == (0, None, 0.0)
    assert all(c.true_positives == 0 and c.false_positives_per_image == 0.0 for c in classes)
    assert "nan" not in json.dumps(row.report).lower()


class _LookupModel:
    """A model that 'predicts' the stored production masks of each image it is shown.

    Its classes are listed in reverse order, so mapping by name (not by id) is exercised.
    """

    def __init__(self, scenes: Path) -> None:
        self.name = "lookup"
        self.embedding_dim = 1
        configured = ("disc", "box", "triangle", "star")
        self.categories = tuple(reversed(configured))
        self.by_image: dict[bytes, list[InstancePrediction]] = {}
        for line in map(json.loads, (scenes / "samples.jsonl").read_text().splitlines()):
            image = np.asarray(Image.open(scenes / line["image"]).convert("RGB"))
            found: list[InstancePrediction] = []
            for inst in line["instances"]:
                rle = to_compressed(inst["segmentation"], line["height"], line["width"])
                name = configured[inst["category_id"] - 1]
                found.append(
                    InstancePrediction(
                        category_id=self.categories.index(name) + 1,
                        score=inst["score"],
                        mask=mask_utils.decode(rle.rle()).astype(bool),
                        class_scores=np.zeros(4, np.float32),
                    )
                )
            self.by_image[image.tobytes()] = found

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        return [self.by_image[np.ascontiguousarray(img).tobytes()] for img in images]

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        raise NotImplementedError


def test_a_model_run_over_the_holdout_scores_like_its_results_file(
    sessions: sessionmaker[Session], scenes_dir: Path
) -> None:
    import_holdout(sessions, scenes_dir / "annotations.json", scenes_dir / "images", "h", CLOCK)
    model = _LookupModel(scenes_dir)
    progress: list[tuple[int, int]] = []
    report = evaluate_holdout(
        sessions,
        "h",
        CLOCK,
        model=model,
        batch_size=5,
        on_batch=lambda d, t: progress.append((d, t)),
    )
    expected = pycocotools_stats(scenes_dir / "annotations.json", log_as_results(scenes_dir))
    (_, preds, quality) = report.results[0]
    assert preds.model_version == "lookup" and preds.source == "model:lookup"
    assert quality.coco.ap == pytest.approx(expected[0], abs=1e-9)
    assert quality.coco.ap50 == pytest.approx(expected[1], abs=1e-9)
    assert progress == [(5, 12), (10, 12), (12, 12)]


def test_a_model_class_missing_from_the_config_is_named(
    sessions: sessionmaker[Session], scenes_dir: Path
) -> None:
    import_holdout(sessions, scenes_dir / "annotations.json", scenes_dir / "images", "h", CLOCK)
    model = _LookupModel(scenes_dir)
    model.categories = ("disc", "box", "triangle", "kite")
    with pytest.raises(InvalidInputError, match="class 'kite'"):
        evaluate_holdout(sessions, "h", CLOCK, model=model)
