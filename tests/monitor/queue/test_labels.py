"""Returned labels become ground truth of labelled production samples (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import MaskArray
from monitor.clock import ManualClock
from monitor.errors import InvalidInputError
from monitor.masks import decode_mask, encode_mask
from monitor.queue.labels import ImportReport, import_labels, match_by_class
from monitor.queue.returns import ReturnFormat, read_returned
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    LabelOutcome,
    QueueExportBatch,
    QueueItem,
    QueueState,
)
from tests.support.queue_items import (
    START,
    Instance,
    QueueRows,
    box,
    export_image,
    returned_coco,
    returned_cvat,
    returned_labelstudio,
)

LATER = START.replace(hour=9)


def write(path: Path, fmt: ReturnFormat, images: Sequence[object], **kw: object) -> Path:
    if fmt == "coco":
        path.write_text(json.dumps(returned_coco(images)))  # type: ignore[arg-type]
    elif fmt == "labelstudio":
        path.write_text(json.dumps(returned_labelstudio(images, **kw)))  # type: ignore[arg-type]
    else:
        path.write_text(returned_cvat(images))  # type: ignore[arg-type]
    return path


def run_import(
    sessions: sessionmaker[Session], path: Path, fmt: ReturnFormat, **kw: object
) -> ImportReport:
    return import_labels(
        sessions,
        read_returned(path, fmt),
        ManualClock(LATER),
        file=str(path),
        fmt=fmt,
        review=False,
        **kw,  # type: ignore[arg-type]
    )


def stored_labels(session: Session, sample_id: int) -> list[tuple[int, bytes]]:
    rows = session.execute(
        select(GroundTruthInstance, DatasetImage)
        .join(DatasetImage)
        .where(DatasetImage.sample_id == sample_id)
        .order_by(GroundTruthInstance.id)
    ).all()
    return [
        (gt.category_id, decode_mask(gt.rle_counts, img.height, img.width).tobytes())
        for gt, img in rows
    ]


def as_bytes(labels: Sequence[Instance]) -> list[tuple[int, bytes]]:
    return [(c, m.tobytes()) for c, m in labels]


@pytest.fixture
def setup(sessions: sessionmaker[Session], tmp_path: Path) -> dict[str, int]:
    """Two exported items in one batch, a third exported in another batch, one still queued."""
    with sessions.begin() as session:
        rows = QueueRows(session, tmp_path / "images")
        batch = rows.batch("coco", 2)
        other = rows.batch("coco", 1)
        s1 = rows.sample([(1, box(0, 0, 4, 5)), (2, box(6, 8, 5, 6))])
        s2 = rows.sample([(3, box(2, 2, 6, 6))])
        s3 = rows.sample([(4, box(1, 1, 3, 3))])
        s4 = rows.sample([])
        i1, i2 = rows.item(s1, batch), rows.item(s2, batch)
        i3 = rows.item(s3, other)
        i4 = rows.item(s4, state=QueueState.QUEUED)
        return {
            "i1": i1.id, "i2": i2.id, "i3": i3.id, "i4": i4.id, "s1": s1.id, "s2": s2.id,
            "batch": batch.id, "other": other.id,
        }  # fmt: skip


LABELS_1 = [(1, box(0, 0, 4, 6)), (2, box(6, 8, 5, 6))]  # disc slightly wider than production
LABELS_2 = [(3, box(2, 2, 6, 6)), (1, box(9, 0, 3, 3))]  # production missed a disc


@pytest.mark.parametrize("fmt", ["coco", "labelstudio", "cvat"])
def test_each_format_becomes_ground_truth_with_exact_masks(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int], fmt: ReturnFormat
) -> None:
    images = [  # named as `segmon queue export` copies them (CVAT finds items by name)
        export_image(setup["i1"], f"images/{setup['i1']:08d}_r-0001.png", LABELS_1),
        export_image(setup["i2"], f"images/{setup['i2']:08d}_r-0002.png", LABELS_2),
    ]
    path = write(tmp_path / f"labels.{fmt}", fmt, images)
    report = run_import(sessions, path, fmt, annotator="alice")
    assert sorted(report.labeled) == sorted([setup["i1"], setup["i2"]])
    assert report.instances == 4 and not report.skipped and not report.flagged
    assert report.closed_batches == [setup["batch"]]
    with sessions() as session:
        assert sorted(stored_labels(session, setup["s1"])) == sorted(as_bytes(LABELS_1))
        assert sorted(stored_labels(session, setup["s2"])) == sorted(as_bytes(LABELS_2))
        dataset = session.scalar(select(Dataset))
        assert dataset is not None and (dataset.name, dataset.kind) == (
            "labelled-production",
            "labelled",
        )
        image = session.scalar(select(DatasetImage).where(DatasetImage.sample_id == setup["s1"]))
        assert image is not None and image.image_uri is not None
        assert image.image_uri.endswith("r-0001.png") and (image.width, image.height) == (16, 12)
        for gt in session.scalars(select(GroundTruthInstance)):  # pycocotools' area and box
            rle = {"size": [12, 16], "counts": gt.rle_counts.encode()}
            assert gt.area == int(mask_utils.area(rle))
            assert [gt.bbox_x, gt.bbox_y, gt.bbox_w, gt.bbox_h] == mask_utils.toBbox(rle).tolist()
            assert gt.id != 0 and not gt.iscrowd
        items = {i.id: i for i in session.scalars(select(QueueItem))}
        annotator = "ann@example.com" if fmt == "labelstudio" else "alice"
        for key in ("i1", "i2"):
            item = items[setup[key]]
            assert (item.state, item.labeled_by, item.closed_at) == (
                QueueState.LABELED,
                annotator,
                LATER,
            )
        assert items[setup["i3"]].state == QueueState.EXPORTED
        batches = {b.id: b.closed_at for b in session.scalars(select(QueueExportBatch))}
        assert batches == {setup["batch"]: LATER, setup["other"]: None}


def test_cvat_images_match_their_sample_by_image_name(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    # CVAT keeps no item id: an image named as the sample's image file finds its item.
    images = [export_image(setup["i3"], "some/folder/r-0003.png", [(4, box(1, 1, 3, 4))])]
    report = run_import(sessions, write(tmp_path / "a.xml", "cvat", images), "cvat")
    assert report.labeled == [setup["i3"]] and report.closed_batches == [setup["other"]]
    unknown = [export_image(setup["i1"], "nowhere.png", [])]
    with pytest.raises(InvalidInputError, match="image 'nowhere.png' carries no queue item id"):
        run_import(sessions, write(tmp_path / "b.xml", "cvat", unknown), "cvat")
    # An export-style name whose id is not that image's item is not trusted.
    swapped = [export_image(setup["i1"], f"{setup['i1']:08d}_r-0002.png", [])]
    with pytest.raises(InvalidInputError, match="no exported queue item has an image named"):
        run_import(sessions, write(tmp_path / "c.xml", "cvat", swapped), "cvat")


def test_cancelled_tasks_skip_their_items_and_the_batch_closes_when_all_are_closed(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    first = [export_image(setup["i1"], "a.png", LABELS_1)]
    report = run_import(sessions, write(tmp_path / "1.json", "labelstudio", first), "labelstudio")
    assert report.labeled == [setup["i1"]] and report.closed_batches == []  # i2 still open
    second = [export_image(setup["i2"], "b.png", LABELS_2)]
    path = write(tmp_path / "2.json", "labelstudio", second, cancelled=[setup["i2"]])
    report = run_import(sessions, path, "labelstudio")
    assert report.skipped == [setup["i2"]] and report.labeled == []
    assert report.closed_batches == [setup["batch"]]
    with sessions() as session:
        item = session.get(QueueItem, setup["i2"])
        assert item is not None and (item.state, item.closed_at) == (QueueState.SKIPPED, LATER)
        assert item.labeled_by == "ann@example.com"
        assert stored_labels(session, setup["s2"]) == []  # a skipped image is no label
        assert session.scalar(select(func.count()).select_from(DatasetImage)) == 1


def nothing_written(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
        assert session.scalar(select(func.count()).select_from(GroundTruthInstance)) == 0
        assert session.scalar(select(func.count()).select_from(LabelOutcome)) == 0
        states = set(session.scalars(select(QueueItem.state)))
        assert states == {QueueState.EXPORTED, QueueState.QUEUED}


def test_an_unknown_or_unexported_item_is_an_error_naming_the_image_and_writes_nothing(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    good = export_image(setup["i1"], "good.png", LABELS_1)
    stray = export_image(999_999, "stray.png", [])
    path = write(tmp_path / "a.json", "coco", [good, stray])
    with pytest.raises(InvalidInputError, match=r"image 'stray.png' \(queue item 999999\)"):
        run_import(sessions, path, "coco")
    queued = export_image(setup["i4"], "queued.png", [])
    path = write(tmp_path / "b.json", "coco", [good, queued])
    with pytest.raises(InvalidInputError, match=r"'queued.png'.* is queued, not exported"):
        run_import(sessions, path, "coco")
    nothing_written(sessions)


def test_an_unknown_class_is_an_error_naming_it_and_writes_nothing(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    doc = returned_coco(
        [
            export_image(setup["i1"], "good.png", LABELS_1),
            export_image(setup["i2"], "kite.png", [(1, box(0, 0, 2, 2))]),
        ]
    )
    doc["categories"].append({"id": 9, "name": "kite"})
    doc["annotations"][-1]["category_id"] = 9
    path = tmp_path / "kite.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"'kite.png'.*class 'kite' is not a configured"):
        run_import(sessions, path, "coco")
    nothing_written(sessions)


def test_a_mask_of_another_size_than_the_sample_is_an_error(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    wrong = export_image(setup["i1"], "big.png", [(1, box(0, 0, 2, 2, shape=(20, 20)))])
    path = write(tmp_path / "a.json", "coco", [wrong])
    with pytest.raises(InvalidInputError, match=r"'big.png'.* is 20x20 in the file.* is 16x12"):
        run_import(sessions, path, "coco")
    nothing_written(sessions)


def test_importing_again_changes_nothing_and_reports_changed_labels(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    images = [
        export_image(setup["i1"], "a.png", LABELS_1),
        export_image(setup["i2"], "b.png", LABELS_2),
    ]
    path = write(tmp_path / "a.json", "labelstudio", images)
    run_import(sessions, path, "labelstudio")
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(GroundTruthInstance))
    again = run_import(sessions, path, "labelstudio")
    assert again.labeled == [] and sorted(again.unchanged) == sorted([setup["i1"], setup["i2"]])
    assert again.ignored == [] and again.instances == 0 and again.closed_batches == []
    changed = [export_image(setup["i1"], "a.png", [(2, box(0, 0, 3, 3))])]
    report = run_import(sessions, write(tmp_path / "b.json", "coco", changed), "coco")
    assert report.ignored == [setup["i1"]] and report.labeled == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(GroundTruthInstance)) == before
        assert sorted(stored_labels(session, setup["s1"])) == sorted(as_bytes(LABELS_1))


def test_an_item_twice_in_one_file_is_an_error(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    doc = returned_coco([export_image(setup["i1"], "a.png", LABELS_1)])
    doc["images"].append(dict(doc["images"][0], id=77, file_name="again.png"))
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=f"queue item {setup['i1']} appears twice"):
        run_import(sessions, path, "coco")


def test_outcomes_per_class_are_stored_for_the_sli(
    sessions: sessionmaker[Session], tmp_path: Path, setup: dict[str, int]
) -> None:
    images = [export_image(setup["i1"], "a.png", LABELS_1)]
    run_import(sessions, write(tmp_path / "a.json", "coco", images), "coco")
    with sessions() as session:
        rows = {
            r.category_id: (r.ious, r.production_only, r.label_only)
            for r in session.scalars(select(LabelOutcome))
        }
    # disc: production 4x5 inside the 4x6 label, IoU 20/24; box: identical.
    assert rows == {1: ([pytest.approx(20 / 24)], 0, 0), 2: ([1.0], 0, 0)}


def test_match_by_class_pairs_within_each_class_only() -> None:
    def rle(mask: MaskArray) -> dict[str, Any]:
        return encode_mask(mask).rle()

    a, b, c = box(0, 0, 4, 4), box(0, 0, 4, 2), box(8, 8, 3, 3)
    labels = [(1, rle(a)), (1, rle(c)), (2, rle(c))]
    production = [(1, rle(b)), (2, rle(a)), (3, rle(c))]
    out = match_by_class(labels, production)
    assert {k: (list(v.ious), v.production_only, v.label_only) for k, v in out.items()} == {
        1: ([0.5], 0, 1),  # b matches a; c is missed
        2: ([], 1, 1),  # a and c do not overlap: a false positive and a miss
        3: ([], 1, 0),
    }
    assert match_by_class([], []) == {}
    assert np.isclose(out[1].ious[0], 0.5)


@pytest.mark.postgres
def test_concurrent_imports_of_one_file_label_each_item_once(
    postgres_url: str, tmp_path: Path
) -> None:
    import threading

    from monitor.config import DEFAULT_CATEGORIES
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory

    engine = make_engine(postgres_url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            rows = QueueRows(session, tmp_path / "images")
            batch = rows.batch()
            ids = [rows.item(rows.sample([(1, box(0, 0, 3, 3))]), batch).id for _ in range(6)]
        images = [export_image(i, f"{i}.png", [(1, box(0, 0, 3, 4))]) for i in ids]
        path = write(tmp_path / "a.json", "coco", images)
        reports: list[ImportReport] = []
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def work() -> None:
            try:
                start.wait()
                reports.append(run_import(sessions, path, "coco"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        labeled = sorted(i for r in reports for i in r.labeled)
        unchanged = sorted(i for r in reports for i in r.unchanged)
        assert labeled == sorted(ids) and unchanged == sorted(ids)  # each labeled exactly once
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(GroundTruthInstance)) == 6
            assert session.scalar(select(func.count()).select_from(DatasetImage)) == 6
            assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    finally:
        engine.dispose()
