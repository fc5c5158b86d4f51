"""Labelled production samples are holdout-SLI events at their capture times (SQLite, PG)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.quality.job import evaluate_holdout
from monitor.queue.labels import import_labels
from monitor.queue.returns import parse_returned
from monitor.queue.review import decide_review
from monitor.slo.burn import SLOStatus
from monitor.slo.events import read_slo_status
from monitor.slo.spec import QualitySLI, SLOSpec
from monitor.storage.schema import QueueItem
from tests.support.queue_items import Instance, QueueRows, box, export_image, returned_coco
from tests.support.result_rows import NOW, Rows

M = timedelta(minutes=1)
A = box(0, 0, 5, 6)  # 30 px
A_WIDER = box(0, 0, 6, 6)  # IoU 30/36 with A
A_SMALL = box(0, 0, 2, 6)  # IoU 12/30 = 0.4 with A
B = box(6, 9, 5, 6)
C = box(8, 0, 3, 3)


def spec(threshold: float = 0.5, class_name: str | None = None) -> SLOSpec:
    sli = QualitySLI(source="holdout", iou_threshold=threshold, class_name=class_name)
    return SLOSpec(name="q", objective=0.9, period="30d", sli=sli, min_events=1, page=False)


def counts(status: SLOStatus) -> dict[str, tuple[int, int]]:
    return {w.window: (w.events, w.bad_events) for w in status.windows}


def test_labelled_samples_are_events_at_capture_time(
    sessions: sessionmaker[Session], tmp_path: Path, rows: Rows
) -> None:
    cases: list[tuple[timedelta, list[Instance], list[Instance]]] = [
        (2 * M, [(1, A), (2, B)], [(1, A_WIDER), (2, B)]),  # 2 good
        (20 * M, [(1, A)], [(1, A_SMALL), (2, B)]),  # pair at 0.4: FP + miss; box missed
        (3 * 60 * M, [(3, C)], []),  # a false positive on an empty image
        (40 * M, [(1, A)], [(1, A)]),  # flagged below: left out until accepted
        (timedelta(days=31), [(1, A)], [(1, A)]),  # older than the period
    ]
    with sessions.begin() as session:
        queue = QueueRows(session, tmp_path)
        batch = queue.batch()
        items = [
            queue.item(queue.sample(prod, captured_at=NOW - ago), batch).id
            for ago, prod, _ in cases
        ]
    doc = returned_coco(
        [export_image(i, f"{i}.png", c[2]) for i, c in zip(items, cases, strict=True)]
    )
    clock = ManualClock(NOW - M)
    import_labels(
        sessions, parse_returned(json.dumps(doc), "coco"), clock, file="f", fmt="coco", review=False
    )
    with sessions.begin() as session:
        session.execute(update(QueueItem).where(QueueItem.id == items[3]).values(review_reason="x"))
    # An evaluation of the labelled dataset is not counted again at its computed_at.
    evaluate_holdout(sessions, "labelled-production", clock)
    # A holdout evaluation 10 minutes ago still counts as before: 8 TP, 1 FP, 1 FN.
    rows.quality(NOW - 10 * M, [(1, "disc", 8, 1, 1)])
    rows.session.commit()

    with sessions() as session:
        status = read_slo_status(session, spec(), NOW)
        loose = read_slo_status(session, spec(threshold=0.3), NOW)
        boxes = read_slo_status(session, spec(class_name="box"), NOW)
    got = counts(status)
    assert got["5m"] == (2, 0)
    assert got["30m"] == got["1h"] == (2 + 3 + 10, 0 + 3 + 2)
    assert got["6h"] == got["30d"] == (16, 6)
    # At IoU 0.3 the 0.4 pair is a true positive: that sample gives 2 events, 1 bad (the
    # holdout evaluation was made at 0.5 and does not count at 0.3).
    assert counts(loose)["30m"] == (2 + 2, 0 + 1)
    assert counts(boxes)["30m"] == (2, 1)  # box: one match, one miss (holdout rows are disc)

    decide_review(sessions, items[3], "accepted", clock)
    with sessions() as session:
        accepted = counts(read_slo_status(session, spec(), NOW))
    assert accepted["1h"] == (16, 5) and accepted["30m"] == (15, 5)
