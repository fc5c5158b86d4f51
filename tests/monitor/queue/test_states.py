"""Item states: the allowed moves, skipping, expiry, and closing a finished batch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.errors import NotFoundError
from monitor.queue.expire import expire_items
from monitor.queue.exporter import export_batch
from monitor.queue.fill import fill_queue
from monitor.queue.states import (
    TRANSITIONS,
    InvalidTransitionError,
    check_transition,
    move_item,
    skip_item,
)
from monitor.storage.schema import QueueExportBatch, QueueItem, QueueState
from tests.support.queue_scenes import NOW, Inst, QueueScenes, queue_settings

ALLOWED = {
    ("queued", "exported"),
    ("queued", "skipped"),
    ("queued", "expired"),
    ("exported", "labeled"),
    ("exported", "skipped"),
    ("exported", "expired"),
}


def test_only_the_documented_moves_are_allowed() -> None:
    for current in QueueState:
        for target in QueueState:
            if (str(current), str(target)) in ALLOWED:
                check_transition(1, current, target)
            else:
                with pytest.raises(InvalidTransitionError) as info:
                    check_transition(5, current, target)
                assert f"queue item 5 is {current}; it cannot become {target}" in str(info.value)
                assert isinstance(info.value, ValueError)
                assert (info.value.current, info.value.target) == (current, target)
    assert {s for s in QueueState if not TRANSITIONS[s]} == {
        QueueState.LABELED,
        QueueState.SKIPPED,
        QueueState.EXPIRED,
    }


def _queue(sessions: sessionmaker[Session], scenes: QueueScenes, tmp_path: Path, n: int) -> None:
    for k in range(n):
        scenes.sample([Inst(1, 0.5 + k / 20)])
    fill_queue(sessions, queue_settings(tmp_path), ManualClock(NOW))


def test_skip_marks_final_and_refuses_a_second_move(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    _queue(sessions, queue_scenes, tmp_path, 1)
    with sessions() as session:
        item_id = session.scalars(select(QueueItem.id)).one()
    later = NOW + timedelta(hours=1)
    with sessions.begin() as session:
        assert skip_item(session, item_id, later).state == QueueState.SKIPPED
    with sessions() as session:
        item = session.get(QueueItem, item_id)
        assert item is not None and (item.state, item.closed_at) == (QueueState.SKIPPED, later)
    with sessions.begin() as session, pytest.raises(InvalidTransitionError, match="is skipped"):
        skip_item(session, item_id, later)
    with sessions.begin() as session, pytest.raises(NotFoundError, match="no queue item 999"):
        skip_item(session, 999, later)


def test_expiry_after_ttl_and_a_batch_closes_when_all_its_items_are_final(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    _queue(sessions, queue_scenes, tmp_path, 3)
    settings = queue_settings(tmp_path)
    batch = export_batch(sessions, settings, ManualClock(NOW + timedelta(days=2)), limit=2)
    assert batch is not None
    ttl = timedelta(days=7)
    early = expire_items(sessions, ttl, NOW + timedelta(days=6))
    assert (early.queued, early.exported) == (0, 0)
    # 8 days after queueing: the queued item expires; the exported ones have until day 9.
    mid = expire_items(sessions, ttl, NOW + timedelta(days=8))
    assert (mid.queued, mid.exported) == (1, 0)
    with sessions.begin() as session:
        first = session.get(QueueItem, batch.item_ids[0])
        assert first is not None
        move_item(session, first, QueueState.LABELED, NOW + timedelta(days=8), by="ann")
        assert first.labeled_by == "ann"
        row = session.get(QueueExportBatch, batch.batch_id)
        assert row is not None and row.closed_at is None  # one item still open
    late = expire_items(sessions, ttl, NOW + timedelta(days=10))
    assert (late.queued, late.exported) == (0, 1)
    with sessions() as session:
        states = sorted(str(s) for s in session.scalars(select(QueueItem.state)))
        assert states == ["expired", "expired", "labeled"]
        row = session.get(QueueExportBatch, batch.batch_id)
        assert row is not None and row.closed_at == NOW + timedelta(days=10)
