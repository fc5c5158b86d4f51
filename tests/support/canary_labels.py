"""Labels for stored production samples, drawn from their own predicted masks.

:func:`label_samples` writes a ``labelled`` dataset whose images are production samples
(as labels returned from the annotation queue): each sample's labels are its predicted
masks grown by ``grow`` pixels, so a version labelled with a larger ``grow`` predicted
masks that fall short of the truth by more (a lower ``quality``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from scipy.ndimage import binary_dilation
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.masks import decode_mask
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    ModelVersion,
    PredictedInstance,
    Sample,
)
from monitor.storage.trusted import LABELLED_KIND
from tests.support.drift_scenes import mask_columns

CREATED = datetime(2026, 11, 24, tzinfo=UTC)


def _dataset(session: Session) -> int:
    found = session.scalar(select(Dataset.id).where(Dataset.kind == LABELLED_KIND))
    if found is not None:
        return found
    dataset = Dataset(
        name="labelled", kind=LABELLED_KIND, source_uri="memory://queue", created_at=CREATED
    )
    session.add(dataset)
    session.flush()
    return dataset.id


def label_samples(
    sessions: sessionmaker[Session], model_version: str, grow: int, *, every: int = 1
) -> int:
    """Label every ``every``-th sample of ``model_version``; return how many were labelled.

    Each label is a predicted mask dilated ``grow`` times (``grow=0``: the prediction
    is exact).
    """
    with sessions.begin() as session:
        dataset_id = _dataset(session)
        samples = session.scalars(
            select(Sample)
            .join(ModelVersion, ModelVersion.id == Sample.model_version_id)
            .where(ModelVersion.name == model_version)
            .order_by(Sample.id)
        ).all()
        chosen = samples[::every]
        for sample in chosen:
            image = DatasetImage(
                dataset_id=dataset_id,
                source_image_id=sample.id,
                file_name=f"sample-{sample.id}.png",
                image_uri=None,
                image_sha256=sample.image_sha256,
                width=sample.width or 0,
                height=sample.height or 0,
                sample_id=sample.id,
            )
            session.add(image)
            session.flush()
            for inst in session.scalars(
                select(PredictedInstance).where(PredictedInstance.sample_id == sample.id)
            ):
                mask = decode_mask(inst.rle_counts, sample.height or 0, sample.width or 0)
                if grow:
                    mask = binary_dilation(mask, iterations=grow)
                session.add(
                    GroundTruthInstance(
                        image_id=image.id, category_id=inst.category_id, **mask_columns(mask)
                    )
                )
        return len(chosen)
