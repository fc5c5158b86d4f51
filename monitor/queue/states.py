"""The one place that says which state an annotation-queue item may move to.

``queued -> exported -> labeled | skipped | expired``, and a ``queued`` item may also be
skipped or expire before any export. ``labeled``, ``skipped`` and ``expired`` are final.
Every writer of ``queue_items.state`` checks its move with :func:`check_transition`, and
:func:`skip_item` / :func:`move_item` are the way the command line moves one item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.errors import NotFoundError, SegmonError
from monitor.storage.schema import QueueExportBatch, QueueItem, QueueState

__all__ = [
    "FINAL_STATES",
    "OPEN_STATES",
    "TRANSITIONS",
    "InvalidTransitionError",
    "check_transition",
    "close_batch_if_done",
    "move_item",
    "skip_item",
]

TRANSITIONS: Final[Mapping[QueueState, frozenset[QueueState]]] = {
    QueueState.QUEUED: frozenset({QueueState.EXPORTED, QueueState.SKIPPED, QueueState.EXPIRED}),
    QueueState.EXPORTED: frozenset({QueueState.LABELED, QueueState.SKIPPED, QueueState.EXPIRED}),
    QueueState.LABELED: frozenset(),
    QueueState.SKIPPED: frozenset(),
    QueueState.EXPIRED: frozenset(),
}
"""State -> the states an item in it may move to."""

OPEN_STATES: Final = (QueueState.QUEUED, QueueState.EXPORTED)
"""States an item can still leave (the ones that expire)."""
FINAL_STATES: Final = (QueueState.LABELED, QueueState.SKIPPED, QueueState.EXPIRED)
"""States an item never leaves; ``closed_at`` says when it entered one."""


class InvalidTransitionError(SegmonError, ValueError):
    """A queue item was asked to move to a state it may not reach from its own.

    Attributes
    ----------
    item_id, current, target
        The item and both states.
    """

    def __init__(self, item_id: int, current: QueueState, target: QueueState) -> None:
        allowed = sorted(str(s) for s in TRANSITIONS[current])
        super().__init__(
            f"queue item {item_id} is {current}; it cannot become {target} "
            f"(from {current}: {', '.join(allowed) if allowed else 'nothing, it is final'})"
        )
        self.item_id = item_id
        self.current = current
        self.target = target


def check_transition(item_id: int, current: QueueState, target: QueueState) -> None:
    """Raise :class:`InvalidTransitionError` unless ``current -> target`` is allowed.

    Examples
    --------
    >>> check_transition(7, QueueState.QUEUED, QueueState.EXPORTED)
    >>> check_transition(7, QueueState.LABELED, QueueState.QUEUED)
    Traceback (most recent call last):
    ...
    monitor.queue.states.InvalidTransitionError: queue item 7 is labeled; it cannot become \
queued (from labeled: nothing, it is final)
    """
    if target not in TRANSITIONS[current]:
        raise InvalidTransitionError(item_id, current, target)


def move_item(
    session: Session, item: QueueItem, target: QueueState, now: datetime, *, by: str | None = None
) -> None:
    """Move ``item`` to ``target`` (checked), stamping ``closed_at`` on a final state.

    The caller commits; ``by`` is recorded in ``labeled_by`` for a labeled item.
    """
    check_transition(item.id, item.state, target)
    item.state = target
    if target == QueueState.EXPORTED:
        item.exported_at = now
    if target in FINAL_STATES:
        item.closed_at = now
        if by is not None and target == QueueState.LABELED:
            item.labeled_by = by
    session.flush()
    if target in FINAL_STATES and item.export_batch_id is not None:
        close_batch_if_done(session, item.export_batch_id, now)


def close_batch_if_done(session: Session, batch_id: int, now: datetime) -> bool:
    """Stamp the batch's ``closed_at`` once none of its items is open; return whether."""
    still_open = session.scalar(
        select(func.count())
        .select_from(QueueItem)
        .where(QueueItem.export_batch_id == batch_id, QueueItem.state.in_(OPEN_STATES))
    )
    if still_open:
        return False
    batch = session.get(QueueExportBatch, batch_id)
    if batch is not None and batch.closed_at is None:
        batch.closed_at = now
        session.flush()
    return True


def skip_item(session: Session, item_id: int, now: datetime) -> QueueItem:
    """Mark one item skipped (a human decided it is not worth labelling).

    Raises
    ------
    NotFoundError
        If there is no item ``item_id``.
    InvalidTransitionError
        If the item is already labeled, skipped or expired.
    """
    item = session.get(QueueItem, item_id, with_for_update=True)
    if item is None:
        raise NotFoundError(f"no queue item {item_id}")
    move_item(session, item, QueueState.SKIPPED, now)
    return item
