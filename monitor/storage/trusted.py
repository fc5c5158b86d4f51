"""Which labelled production samples evaluate and the SLI may trust.

Labels returned from the annotation queue that disagree strongly with both models are
flagged for review (``queue_items.review_reason``, see :mod:`monitor.queue.review`);
until someone accepts them (``review_decision = 'accepted'``) they are stored but left
out of quality results and SLI events. A sample no queue item flagged is trusted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_

from monitor.storage.schema import QueueItem

LABELLED_KIND = "labelled"
"""``datasets.kind`` of the dataset of labelled production samples."""


def trusted_sample(sample_id: Any) -> ColumnElement[bool]:
    """Return the SQL condition "the labels of sample ``sample_id`` (a column) are trusted".

    True unless a queue item of that sample has a review flag that was not accepted.
    """
    untrusted = exists().where(
        and_(
            QueueItem.sample_id == sample_id,
            QueueItem.review_reason.is_not(None),
            or_(QueueItem.review_decision.is_(None), QueueItem.review_decision != "accepted"),
        )
    )
    return ~untrusted
