"""Per-image quality of production predictions on labelled samples (the canary's ``quality``).

A production sample has labels when

- it is a **labelled production sample**: a dataset image links to it
  (``dataset_images.sample_id``, labels returned from the annotation queue), and no
  review flag on it waits for a decision (:func:`monitor.storage.trusted.trusted_sample`);
  or
- it is a **golden request**: its image (by sha256) is an image of a holdout (a dataset
  that is not the labelled one), as the evaluate job's golden predictions
  (:func:`monitor.quality.job.golden_predictions`).

A sample with both is scored against its own labels; a golden image in several
holdouts against the first imported (lowest dataset image id).

The per-image score is the shadow agreement with the labels in place of the reference
model: production's stored instances (all of them, as the shadow job compares) and the
labelled instances (crowd regions left out, as COCO ignores them) are matched one-to-one
by :func:`monitor.matching.compare_instances`, and the score is the sum of the IoUs of
matched pairs of the same class over the larger of the two instance counts. It is 1.0
when production found exactly the labelled objects with exact masks, 0.0 when nothing
matches, 1.0 on an image where both are empty; lower is worse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors._typing import Float64Array
from monitor.drift.features import Population, image_filter
from monitor.masks import decode_mask
from monitor.matching import Instance, compare_instances
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    PredictedInstance,
    Sample,
)
from monitor.storage.trusted import LABELLED_KIND, trusted_sample

CHUNK = 500
"""Samples read (and their masks decoded) per query."""


def labelled_images(session: Session, pop: Population) -> dict[int, int]:
    """Return the labels of the samples of ``pop`` that have any: sample id -> dataset image id.

    Own labels (labelled production samples, trusted) win over a golden holdout image.
    """
    golden = (
        select(Sample.id, DatasetImage.id)
        .join(DatasetImage, DatasetImage.image_sha256 == Sample.image_sha256)
        .join(Dataset, Dataset.id == DatasetImage.dataset_id)
        .where(
            image_filter(pop),
            Sample.image_sha256.is_not(None),
            Dataset.kind != LABELLED_KIND,
            DatasetImage.width == Sample.width,
            DatasetImage.height == Sample.height,
        )
        .order_by(DatasetImage.id.desc())
    )
    chosen = {sample_id: image_id for sample_id, image_id in session.execute(golden)}
    own = (
        select(Sample.id, DatasetImage.id)
        .join(DatasetImage, DatasetImage.sample_id == Sample.id)
        .where(
            image_filter(pop),
            trusted_sample(Sample.id),
            DatasetImage.width == Sample.width,
            DatasetImage.height == Sample.height,
        )
        .order_by(DatasetImage.id.desc())
    )
    chosen.update({sample_id: image_id for sample_id, image_id in session.execute(own)})
    return chosen


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for k in range(0, len(ids), CHUNK):
        yield list(ids[k : k + CHUNK])


def label_scores(session: Session, pop: Population, *, min_iou: float = 0.1) -> Float64Array:
    """Return the per-image quality of the labelled samples of ``pop``, by sample id.

    Parameters
    ----------
    session
        An open session (read only).
    pop
        A production population (a span, usually of one model version).
    min_iou
        Pairs below this IoU are not matched (``shadow.min_iou``).

    Returns
    -------
    Float64Array
        One score in ``[0, 1]`` per labelled sample (see the module docstring); empty
        when no sample of ``pop`` has labels.
    """
    chosen = labelled_images(session, pop)
    sample_ids = sorted(chosen)
    scores: list[float] = []
    for chunk in _chunks(sample_ids):
        image_size = {
            image_id: (h, w)
            for image_id, h, w in session.execute(
                select(DatasetImage.id, DatasetImage.height, DatasetImage.width).where(
                    DatasetImage.id.in_(sorted({chosen[sid] for sid in chunk}))
                )
            )
        }
        predicted: dict[int, list[Instance]] = {sid: [] for sid in chunk}
        for sid, cat, counts in session.execute(
            select(
                PredictedInstance.sample_id,
                PredictedInstance.category_id,
                PredictedInstance.rle_counts,
            )
            .where(PredictedInstance.sample_id.in_(chunk))
            .order_by(PredictedInstance.id)
        ):
            predicted[sid].append((cat, decode_mask(counts, *image_size[chosen[sid]])))
        labels: dict[int, list[Instance]] = {image_id: [] for image_id in image_size}
        for image_id, cat, counts in session.execute(
            select(
                GroundTruthInstance.image_id,
                GroundTruthInstance.category_id,
                GroundTruthInstance.rle_counts,
            )
            .where(
                GroundTruthInstance.image_id.in_(list(image_size)),
                GroundTruthInstance.iscrowd.is_(False),
            )
            .order_by(GroundTruthInstance.id)
        ):
            labels[image_id].append((cat, decode_mask(counts, *image_size[image_id])))
        scores.extend(
            compare_instances(predicted[sid], labels[chosen[sid]], min_iou=min_iou).agreement
            for sid in chunk
        )
    return np.asarray(scores, dtype=np.float64)
