"""Review flags: returned labels that neither model agrees with are not trusted blindly.

An annotator's labels that disagree strongly with **both** production's stored
prediction and the reference model's prediction on the same image are more likely a
labelling error (wrong class everywhere, a mask on the wrong image, an empty
submission) than a failure both models share. Agreement is the shadow job's image
agreement (:func:`monitor.quality.shadow.compare_instances`: one-to-one matching by IoU
regardless of class, then the same-class matched IoUs summed over the larger instance
count; 1.0 when both sides are empty). The labels are flagged when

    agreement(labels, production) < review_below  and  agreement(labels, reference) < review_below

(``labels.review_below``, 0.3 by default). Where the reference model could not run on
the image (unreadable image), the flag rests on production alone and its reason says
so. Flagged labels are stored, but evaluate and the holdout-quality SLI leave them out
(:func:`monitor.storage.trusted.trusted_sample`) until ``segmon queue review ID --accept``;
``--reject`` keeps them out for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import InvalidInputError, NotFoundError
from monitor.quality.shadow import Instance, compare_instances
from monitor.storage.schema import QueueItem

ReviewDecision = Literal["accepted", "rejected"]


@dataclass(frozen=True)
class ReviewVerdict:
    """How far returned labels agree with the two models on one image.

    Attributes
    ----------
    production_agreement
        Image agreement of the labels with production's stored prediction.
    reference_agreement
        Image agreement with the reference model's prediction (None: it could not run).
    reason
        Why the labels are flagged for review, or None when they are trusted.
    """

    production_agreement: float
    reference_agreement: float | None
    reason: str | None


def review_labels(
    labels: Sequence[Instance],
    production: Sequence[Instance],
    reference: Sequence[Instance] | None,
    *,
    below: float = 0.3,
    min_iou: float = 0.1,
) -> ReviewVerdict:
    """Flag labels whose agreement with production and with the reference is below ``below``.

    Parameters
    ----------
    labels, production, reference
        ``(category_id, bool mask)`` per instance on one image; ``reference`` None when
        the reference model could not run (the flag then rests on production alone).
    below
        Agreement under which a model "disagrees strongly", in [0, 1].
    min_iou
        Pairs below this IoU are no match (the shadow job's ``shadow.min_iou``).

    Returns
    -------
    ReviewVerdict
        Both agreements and the reason for a flag (None: not flagged).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((8, 8), bool); a[:4, :4] = True
    >>> b = np.zeros((8, 8), bool); b[4:, 4:] = True
    >>> review_labels([(1, a)], [(1, a)], [(1, b)]).reason is None  # production agrees
    True
    >>> review_labels([(1, a)], [(1, b)], [(1, a)]).reason is None  # the reference agrees
    True
    >>> review_labels([(2, a)], [(1, a)], [(1, b)]).reason
    'labels agree 0.00 with production and 0.00 with the reference (below 0.30)'
    """
    if not 0.0 <= below <= 1.0:
        raise InvalidInputError(f"review threshold must be in [0, 1], got {below!r}")
    with_production = compare_instances(labels, production, min_iou=min_iou).agreement
    with_reference = (
        None
        if reference is None
        else compare_instances(labels, reference, min_iou=min_iou).agreement
    )
    reason = None
    if with_production < below:
        if with_reference is None:
            reason = (
                f"labels agree {with_production:.2f} with production (below {below:.2f}); "
                "the reference model could not run on the image"
            )
        elif with_reference < below:
            reason = (
                f"labels agree {with_production:.2f} with production and {with_reference:.2f} "
                f"with the reference (below {below:.2f})"
            )
    return ReviewVerdict(with_production, with_reference, reason)


@dataclass(frozen=True)
class ReviewOutcome:
    """What ``segmon queue review`` recorded."""

    item_id: int
    decision: ReviewDecision
    review_reason: str
    reviewed_by: str | None

    def counts(self) -> dict[str, object]:
        """Return the outcome as a JSON-ready dict."""
        return {
            "item_id": self.item_id,
            "decision": self.decision,
            "review_reason": self.review_reason,
            "reviewed_by": self.reviewed_by,
        }


def decide_review(
    sessions: sessionmaker[Session],
    item_id: int,
    decision: ReviewDecision,
    clock: Clock,
    *,
    reviewer: str | None = None,
) -> ReviewOutcome:
    """Accept flagged labels into quality and the SLI, or reject them for good.

    Raises
    ------
    NotFoundError
        If no queue item has that id.
    InvalidInputError
        If the item's labels were not flagged for review (nothing to decide).
    """
    if decision not in ("accepted", "rejected"):
        raise InvalidInputError(f"review decision {decision!r} is not accepted or rejected")
    with sessions.begin() as session:
        item = _flagged_item(session, item_id)
        item.review_decision = decision
        item.reviewed_at = clock.now()
        item.reviewed_by = reviewer
        reason = item.review_reason or ""
    return ReviewOutcome(item_id, decision, reason, reviewer)


def _flagged_item(session: Session, item_id: int) -> QueueItem:
    item = session.scalar(select(QueueItem).where(QueueItem.id == item_id).with_for_update())
    if item is None:
        raise NotFoundError(f"no queue item {item_id}")
    if item.review_reason is None:
        raise InvalidInputError(
            f"queue item {item_id} ({item.state.value}) has no labels flagged for review"
        )
    return item
