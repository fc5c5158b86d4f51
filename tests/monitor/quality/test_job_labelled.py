"""``evaluate`` on labelled production samples: production's stored masks vs returned labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.errors import NotFoundError
from monitor.quality.job import evaluate_holdout
from monitor.queue.labels import import_labels
from monitor.queue.returns import parse_returned
from monitor.queue.review import decide_review
from monitor.storage.schema import ClassQualityRow, QualityResult, QueueItem
from tests.support.queue_items import START, Instance, QueueRows, box, export_image, returned_coco

A = box(0, 0, 5, 6)
B = box(6, 9, 5, 6)
CLOCK = ManualClock(START.replace(hour=12))


def label(sessions: sessionmaker[Session], items: list[tuple[int, list[Instance]]]) -> None:
    doc = returned_coco([export_image(i, f"{i}.png", labels) for i, labels in items])
    import_labels(
        sessions,
        parse_returned(json.dumps(doc), "coco"),
        CLOCK,
        file="x.json",
        fmt="coco",
        review=False,
    )


@pytest.fixture
def labelled(sessions: sessionmaker[Session], tmp_path: Path) -> dict[str, int]:
    """prod-a: production == labels; prod-b: production found 1 of 2 discs; one more prod-a."""
    with sessions.begin() as session:
        rows = QueueRows(session, tmp_path)
        batch = rows.batch()
        same = rows.sample([(1, A), (2, B)], version="prod-a")
        missed = rows.sample([(1, A)], version="prod-b")
        wrong = rows.sample([(1, A)], version="prod-a")
        ids = {
            "same": rows.item(same, batch).id,
            "missed": rows.item(missed, batch).id,
            "wrong": rows.item(wrong, batch).id,
        }
    label(
        sessions,
        [
            (ids["same"], [(1, A), (2, B)]),
            (ids["missed"], [(1, A), (1, B)]),
            (ids["wrong"], [(2, B)]),
        ],
    )
    with sessions.begin() as session:  # the third one's labels wait for review
        session.execute(
            update(QueueItem).where(QueueItem.id == ids["wrong"]).values(review_reason="odd")
        )
    return ids


def test_stored_production_predictions_are_scored_against_the_labels_per_version(
    sessions: sessionmaker[Session], labelled: dict[str, int]
) -> None:
    report = evaluate_holdout(sessions, "labelled-production", CLOCK)
    by_version = {p.model_version: (p, r) for _, p, r in report.results}
    assert sorted(by_version) == ["prod-a", "prod-b"]
    preds, same = by_version["prod-a"]
    assert preds.source == "production" and same.n_images == 1  # the flagged one is left out
    assert same.coco.ap == pytest.approx(1.0) and same.overall.recall == 1.0
    assert same.overall.precision == 1.0 and same.overall.mean_iou == pytest.approx(1.0)
    _, missed = by_version["prod-b"]
    [disc] = [c for c in missed.per_class if c.name == "disc"]
    assert (disc.true_positives, disc.false_negatives, disc.false_positives) == (1, 1, 0)
    assert disc.recall == 0.5 and missed.overall.recall == 0.5
    assert missed.coco.ap == pytest.approx(51 / 101)  # precision 1 up to recall 0.5
    with sessions() as session:
        stored = session.scalars(select(QualityResult).order_by(QualityResult.id)).all()
        assert [(r.model_version, r.n_images, r.recall) for r in stored] == [
            ("prod-a", 1, 1.0),
            ("prod-b", 1, 0.5),
        ]
        classes = session.scalars(
            select(ClassQualityRow).where(ClassQualityRow.quality_result_id == stored[1].id)
        ).all()
        assert {c.class_name: c.false_negatives for c in classes}["disc"] == 1


def test_accepted_labels_join_the_evaluation(
    sessions: sessionmaker[Session], labelled: dict[str, int]
) -> None:
    decide_review(sessions, labelled["wrong"], "accepted", CLOCK)
    report = evaluate_holdout(sessions, "labelled-production", CLOCK)
    [same] = [r for _, p, r in report.results if p.model_version == "prod-a"]
    # Now 2 images: the accepted one has a box label production missed and a stray disc.
    assert same.n_images == 2 and same.overall.recall == pytest.approx(2 / 3)
    assert same.overall.precision == pytest.approx(2 / 3)


def test_a_labelled_dataset_without_trusted_labels_says_so(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as session:
        rows = QueueRows(session, tmp_path)
        item = rows.item(rows.sample([(1, A)]), rows.batch())
        item_id = item.id
    label(sessions, [(item_id, [(2, B)])])
    with sessions.begin() as session:
        session.execute(update(QueueItem).values(review_reason="odd"))
    with pytest.raises(NotFoundError, match="holds no trusted labelled sample yet"):
        evaluate_holdout(sessions, "labelled-production", CLOCK)
