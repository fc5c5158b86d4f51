"""Review flags on returned labels, and review decisions (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.errors import InvalidInputError, NotFoundError
from monitor.queue.labels import import_labels
from monitor.queue.returns import parse_returned
from monitor.queue.review import decide_review, review_labels
from monitor.storage.schema import QueueItem
from tests.support.model_scenes import FakeModel, image_key
from tests.support.queue_items import (
    START,
    QueueRows,
    box,
    export_image,
    read_pixels,
    returned_coco,
)

A = box(0, 0, 5, 6)
B = box(6, 9, 5, 6)
C = box(3, 3, 4, 4)


def test_labels_are_flagged_only_when_both_models_disagree() -> None:
    assert review_labels([(1, A)], [(1, A)], [(2, B)]).reason is None
    assert review_labels([(1, A)], [(2, B)], [(1, A)]).reason is None
    flagged = review_labels([(3, B)], [(1, A)], [(1, A)], below=0.3)
    assert flagged.reason == (
        "labels agree 0.00 with production and 0.00 with the reference (below 0.30)"
    )
    assert (flagged.production_agreement, flagged.reference_agreement) == (0.0, 0.0)
    # The same masks under another class do not agree either (agreement counts same-class pairs).
    assert review_labels([(2, A)], [(1, A)], [(1, A)]).reason is not None
    # No reference (unreadable image): production alone decides, and the reason says so.
    alone = review_labels([(3, B)], [(1, A)], None)
    assert alone.reason is not None and "could not run" in alone.reason
    assert review_labels([], [], []).reason is None  # both empty: full agreement
    with pytest.raises(InvalidInputError, match="review threshold must be in"):
        review_labels([], [], [], below=1.5)


@pytest.fixture
def flagged_setup(
    sessions: sessionmaker[Session], tmp_path: Path
) -> tuple[dict[str, int], FakeModel]:
    """Three exported samples where production predicted A; the reference predicts per image."""
    with sessions.begin() as session:
        rows = QueueRows(session, tmp_path / "images")
        batch = rows.batch("coco", 3)
        samples = [rows.sample([(1, A)]) for _ in range(3)]
        items = [rows.item(s, batch) for s in samples]
        ids = {f"i{k}": i.id for k, i in enumerate(items)}
        uris = [str(s.image_uri) for s in samples]
    reference = FakeModel(
        predictions={
            image_key(read_pixels(uris[0])): [(1, A)],  # agrees with production
            image_key(read_pixels(uris[1])): [(2, B)],  # agrees with the labels
            image_key(read_pixels(uris[2])): [(1, A)],
        }
    )
    return ids, reference


def test_import_flags_labels_that_disagree_with_production_and_the_reference(
    sessions: sessionmaker[Session], flagged_setup: tuple[dict[str, int], FakeModel]
) -> None:
    ids, reference = flagged_setup
    doc = returned_coco(
        [
            export_image(ids["i0"], "a.png", [(3, C)]),  # neither model: flagged
            export_image(ids["i1"], "b.png", [(2, B)]),  # the reference agrees
            export_image(ids["i2"], "c.png", [(1, A)]),  # production agrees
        ]
    )
    report = import_labels(
        sessions,
        parse_returned(json.dumps(doc), "coco"),
        ManualClock(START),
        file="x.json",
        fmt="coco",
        reference=reference,
        batch_size=2,
    )
    assert list(report.flagged) == [ids["i0"]]
    assert report.flagged[ids["i0"]].startswith("labels agree 0.00 with production and 0.00")
    assert report.reference_model == reference.name and reference.calls == 2  # batches of 2
    with sessions() as session:
        reasons = {i.id: i.review_reason for i in session.scalars(select(QueueItem))}
    assert reasons == {ids["i0"]: report.flagged[ids["i0"]], ids["i1"]: None, ids["i2"]: None}

    decided = decide_review(sessions, ids["i0"], "accepted", ManualClock(START), reviewer="bo")
    assert decided.counts()["decision"] == "accepted"
    with sessions() as session:
        item = session.get(QueueItem, ids["i0"])
        assert item is not None
        assert (item.review_decision, item.reviewed_by, item.reviewed_at) == (
            "accepted",
            "bo",
            START,
        )
    with pytest.raises(InvalidInputError, match=f"queue item {ids['i1']} .* no labels flagged"):
        decide_review(sessions, ids["i1"], "rejected", ManualClock(START))
    with pytest.raises(NotFoundError, match="no queue item 424242"):
        decide_review(sessions, 424242, "rejected", ManualClock(START))
