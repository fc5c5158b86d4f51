from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pycocotools import mask as mask_utils
from sqlalchemy import select

from monitor.config import Settings
from monitor.quality.evaluation import GroundTruth, Prediction
from monitor.service.demo import DemoOptions, run_demo
from monitor.service.demo_queue import ANNOTATOR, describe_queue
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import (
    Category,
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    PredictedInstance,
    QueueExportBatch,
    QueueItem,
    QueueState,
    Sample,
)
from tests.support.evaluation_cases import Case, pycocotools_eval

# No canary: the labelled rows are checked against one production version here; the
# canary's labelled rows, evaluated per version, are checked in test_demo_canary.
OPTIONS = DemoOptions(holdout_images=8, images_per_day=20, canary_share=0.0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo-queue") / "demo"
    return workdir, run_demo(workdir, Settings(), OPTIONS)


def _truth(workdir: Path) -> dict[str, list[tuple[str, str]]]:
    """Synth's non-empty true instances of each drifted-day image: (class, COCO counts)."""
    doc = json.loads((workdir / "log" / "day2" / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {img["id"]: img["file_name"] for img in doc["images"]}
    truth: dict[str, list[tuple[str, str]]] = {name: [] for name in files.values()}
    for ann in doc["annotations"]:
        if mask_utils.area(ann["segmentation"]) > 0:
            truth[files[ann["image_id"]]].append(
                (names[ann["category_id"]], ann["segmentation"]["counts"])
            )
    return truth


def test_the_drifted_day_is_queued_exported_once_and_labelled(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    workdir, summary = demo
    queue = summary["queue"]
    assert queue["budget"] == 4  # a fifth of the day's 20 images
    assert 0 < queue["queued"] <= queue["budget"]
    assert sum(queue["reasons"].values()) == queue["queued"]
    sessions = session_factory(make_engine(f"sqlite:///{workdir / 'segmon.db'}"))
    with sessions() as session:
        items = session.scalars(select(QueueItem)).all()
        batches = session.scalars(select(QueueExportBatch)).all()
        request_ids = {
            int(i): str(r) for i, r in session.execute(select(Sample.id, Sample.request_id))
        }
    assert sorted(i.id for i in items) == sorted(queue["item_ids"])
    # the drifted day, its outage included (production answered those with no masks)
    assert all(request_ids[i.sample_id].startswith(("d2-", "out-")) for i in items)
    # one batch, holding every item exactly once, all labelled by the simulated annotator
    assert [(b.id, b.n_items, b.closed_at is not None) for b in batches] == [
        (queue["export_batch_id"], queue["queued"], True)
    ]
    tasks = json.loads(Path(queue["export_path"]).read_text())
    assert sorted(t["data"]["segmon_item_id"] for t in tasks) == sorted(queue["item_ids"])
    assert queue["exported"] == queue["labeled"] == queue["queued"] and queue["skipped"] == 0
    assert {(i.state, i.export_batch_id, i.labeled_by) for i in items} == {
        (QueueState.LABELED, queue["export_batch_id"], ANNOTATOR)
    }
    assert set(queue["flagged"]) <= {str(i) for i in queue["item_ids"]}
    assert json.loads(json.dumps(queue)) == queue  # `segmon demo --json` prints it as is
    # the human lines say what the JSON says
    lines = describe_queue(queue)
    assert f"{queue['queued']} of {queue['candidates']} candidates queued" in lines[0]
    assert f"{len(queue['flagged'])} flagged for review" in lines[2]


def test_the_stored_labels_are_the_generated_ground_truth(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    workdir, summary = demo
    truth = _truth(workdir)
    sessions = session_factory(make_engine(f"sqlite:///{workdir / 'segmon.db'}"))
    with sessions() as session:
        names = {int(i): str(n) for i, n in session.execute(select(Category.id, Category.name))}
        rows = session.execute(
            select(
                Sample.image_uri, GroundTruthInstance.category_id, GroundTruthInstance.rle_counts
            )
            .join(DatasetImage, DatasetImage.id == GroundTruthInstance.image_id)
            .join(Sample, Sample.id == DatasetImage.sample_id)
        ).all()
        labelled = session.scalars(
            select(Sample.image_uri)
            .join(QueueItem, QueueItem.sample_id == Sample.id)
            .where(QueueItem.state == QueueState.LABELED)
        ).all()
    stored: dict[str, Counter[tuple[str, str]]] = {}
    for uri, category, counts in rows:
        stored.setdefault(Path(str(uri)).name, Counter())[(names[category], counts)] += 1
    expected = {Path(str(u)).name: Counter(truth[Path(str(u)).name]) for u in labelled}
    assert stored == {k: v for k, v in expected.items() if v}
    assert summary["queue"]["label_instances"] == sum(sum(c.values()) for c in expected.values())


def test_true_production_quality_matches_cocoeval_on_the_labelled_rows(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    workdir, summary = demo
    queue = summary["queue"]
    (evaluation,) = queue["evaluation"]  # one production model version
    assert evaluation["model_version"] == "prod-2026.11.1"
    assert evaluation["images"] == queue["labeled"] - len(queue["flagged"])
    assert 0.0 <= evaluation["ap"] <= 1.0 and 0.0 <= evaluation["recall"] <= 1.0
    sessions = session_factory(make_engine(f"sqlite:///{workdir / 'segmon.db'}"))
    flagged = {int(i) for i in queue["flagged"]}
    with sessions() as session:
        categories = {
            int(i): str(n) for i, n in session.execute(select(Category.id, Category.name))
        }
        images = session.execute(
            select(DatasetImage.id, DatasetImage.sample_id, DatasetImage.height, DatasetImage.width)
            .join(Dataset, Dataset.id == DatasetImage.dataset_id)
            .join(QueueItem, QueueItem.sample_id == DatasetImage.sample_id)
            .where(Dataset.name == "labelled-production", QueueItem.id.notin_(flagged))
        ).all()
        by_image = {image_id: sample or 0 for image_id, sample, _, _ in images}
        sizes = {sample or 0: (h, w) for _, sample, h, w in images}
        assert 0 not in sizes  # every labelled image is a production sample
        gts = [
            GroundTruth(
                image_id=by_image[g.image_id],
                category_id=g.category_id,
                rle={"size": list(sizes[by_image[g.image_id]]), "counts": g.rle_counts},
                area=float(
                    mask_utils.area(
                        {"size": list(sizes[by_image[g.image_id]]), "counts": g.rle_counts}
                    )
                ),
            )
            for g in session.scalars(
                select(GroundTruthInstance).where(GroundTruthInstance.image_id.in_(list(by_image)))
            )
        ]
        preds = [
            Prediction(
                image_id=p.sample_id,
                category_id=p.category_id,
                score=p.score,
                rle={"size": list(sizes[p.sample_id]), "counts": p.rle_counts},
            )
            for p in session.scalars(
                select(PredictedInstance).where(PredictedInstance.sample_id.in_(list(sizes)))
            )
        ]
    cocoeval = pycocotools_eval(Case(categories, sorted(sizes), sizes, gts, preds))
    assert cocoeval is not None
    assert evaluation["ap"] == pytest.approx(cocoeval.stats[0], abs=1e-9)
    assert evaluation["ap50"] == pytest.approx(cocoeval.stats[1], abs=1e-9)
    # the comparison figures: holdout quality and shadow agreement, as the demo reported them
    production = summary["quality"][0]
    assert queue["holdout_ap"] == pytest.approx(production["ap"])
    day2 = summary["days"][1]["shadow"]
    assert queue["shadow_agreement_day"] == pytest.approx(day2["mean_agreement"])
    assert 0.0 <= queue["shadow_agreement_labelled"] <= 1.0
