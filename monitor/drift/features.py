"""Drift features read from the database: one array per (family, feature, class).

A :class:`Population` is what one side of a drift check reads: production samples
captured in ``[start, end)``, or the images of a labeled holdout. The families:

``image_embedding``
    Image vectors of one embedder, ``(n_images, d)``.
``instance_embedding``
    Per class: vectors of the instances of that class, ``(n_instances, d)``.
``mask_geometry``
    Per class: ``area`` (pixels), ``aspect`` (box width / height), ``boundary``
    (pixels on the mask's 4-neighbour edge) of each instance, and ``count`` (instances
    of the class on each image, zeros included). Drift of one class's objects can hide
    inside an image-level average; these keep the classes apart.
``prediction``
    ``class_mix`` (the class of every instance, categorical), ``score`` per class and
    ``instances_per_image``. A holdout has no scores: its ``score`` features are absent,
    so score checks are skipped when the reference is a holdout.
``image_properties``
    ``brightness``, ``contrast``, ``saturation``, ``sharpness``, ``width``, ``height``
    of each image (rows written by :func:`monitor.drift.properties.fill_image_properties`).

With a holdout, instances are the ground-truth instances (crowd regions left out).

Per-object features (``instance_embedding``, the ``area`` / ``aspect`` / ``boundary`` of
``mask_geometry``, ``class_mix`` and ``score`` of ``prediction``) hold one row per object,
and the objects of one image are not independent draws: they share its camera, light
and scene. :attr:`FeatureSet.groups` therefore gives, for each per-object array, the
image every row came from; the drift job passes it to the detectors, which permute
whole images. Per-image features have no entry there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from monitor.drift.chunked import BoundedSample, stream_chunks
from monitor.drift.population import FeatureKey as FeatureKey
from monitor.drift.population import FeatureSet as FeatureSet
from monitor.drift.population import Population as Population
from monitor.drift.population import VectorBudget as VectorBudget
from monitor.drift.population import count_images as count_images
from monitor.drift.population import image_filter as image_filter
from monitor.drift.scalars import boundary_length as boundary_length
from monitor.drift.scalars import read_scalar_features
from monitor.storage.schema import (
    DatasetImage,
    EmbedderRecord,
    GroundTruthInstance,
    ImageEmbedding,
    InstanceEmbedding,
    PredictedInstance,
    Sample,
)
from monitor.storage.vectors import vectors_from_bytes

Family = Literal[
    "image_embedding", "instance_embedding", "mask_geometry", "prediction", "image_properties"
]
FAMILIES: tuple[Family, ...] = (
    "image_embedding",
    "instance_embedding",
    "mask_geometry",
    "prediction",
    "image_properties",
)


@dataclass
class InstanceRow:
    """One instance as the features need it."""

    image_id: int
    category_id: int
    score: float | None
    bbox_w: float
    bbox_h: float
    area: int
    counts: str


def read_instances(session: Session, pop: Population) -> list[InstanceRow]:
    """Return the instances of ``pop``: predictions, or non-crowd ground truth (no score)."""
    if pop.is_holdout:
        gt = GroundTruthInstance
        stmt: Any = (
            select(gt.image_id, gt.category_id, gt.bbox_w, gt.bbox_h, gt.area, gt.rle_counts)
            .join(DatasetImage, DatasetImage.id == gt.image_id)
            .where(image_filter(pop), gt.iscrowd.is_(False))
            .order_by(gt.id)
        )
        return [InstanceRow(i, c, None, w, h, a, r) for i, c, w, h, a, r in session.execute(stmt)]
    pi = PredictedInstance
    stmt = (
        select(pi.sample_id, pi.category_id, pi.score, pi.bbox_w, pi.bbox_h, pi.area, pi.rle_counts)
        .join(Sample, Sample.id == pi.sample_id)
        .where(image_filter(pop))
        .order_by(pi.id)
    )
    return [InstanceRow(i, c, s, w, h, a, r) for i, c, s, w, h, a, r in session.execute(stmt)]


def _decode(rows: list[Any], dim_at: int, vector_at: int) -> Float64Array:
    dims = {int(r[dim_at]) for r in rows}
    if len(dims) != 1:
        raise ValueError(f"embeddings of one embedder have different dims {sorted(dims)}")
    return vectors_from_bytes([bytes(r[vector_at]) for r in rows], dims.pop()).astype(np.float64)


def _image_embeddings(
    session: Session, pop: Population, embedder: str, budget: VectorBudget
) -> Float64Array | None:
    emb = ImageEmbedding
    if pop.is_holdout:
        owner = DatasetImage
        stmt = select(emb.id, emb.dim, emb.vector).join(owner, owner.id == emb.dataset_image_id)
    else:
        stmt = select(emb.id, emb.dim, emb.vector).join(Sample, Sample.id == emb.sample_id)
    stmt = stmt.where(emb.embedder == embedder, image_filter(pop)).order_by(emb.id)
    sample = BoundedSample(budget.max_rows, budget.seed)
    for rows in stream_chunks(session, stmt, budget.chunk_rows):
        ids = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        sample.add(ids, _decode(rows, 1, 2))
    return sample.vectors() if sample.seen else None


def _instance_embeddings(
    session: Session, pop: Population, embedder: str, budget: VectorBudget
) -> dict[int, tuple[Float64Array, Int64Array]]:
    """Per class: the instance vectors and the image id of each (a bounded sample)."""
    emb = InstanceEmbedding
    stmt: Any
    if pop.is_holdout:
        gt = GroundTruthInstance
        stmt = (
            select(emb.id, emb.category_id, emb.dim, emb.vector, gt.image_id)
            .join(gt, gt.id == emb.ground_truth_instance_id)
            .join(DatasetImage, DatasetImage.id == gt.image_id)
        )
    else:
        pi = PredictedInstance
        stmt = (
            select(emb.id, emb.category_id, emb.dim, emb.vector, pi.sample_id)
            .join(pi, pi.id == emb.predicted_instance_id)
            .join(Sample, Sample.id == pi.sample_id)
        )
    stmt = stmt.where(emb.embedder == embedder, image_filter(pop)).order_by(emb.id)
    samples: dict[int, BoundedSample] = {}
    for rows in stream_chunks(session, stmt, budget.chunk_rows):
        by_class: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_class[int(row[1])].append(row)
        for cat, items in by_class.items():
            sample = samples.setdefault(cat, BoundedSample(budget.max_rows, budget.seed + 1 + cat))
            ids = np.asarray([int(r[0]) for r in items], dtype=np.int64)
            images = np.asarray([int(r[4]) for r in items], dtype=np.int64)
            sample.add(ids, _decode(items, 2, 3), images)
    return {cat: (sample.vectors(), sample.groups()) for cat, sample in samples.items()}


def read_features(
    session: Session,
    pop: Population,
    families: Collection[str],
    class_names: Mapping[int, str],
    embedder: str | None,
    budget: VectorBudget | None = None,
    against: FeatureSet | None = None,
) -> FeatureSet:
    """Read every feature array of ``families`` for ``pop``.

    Parameters
    ----------
    session
        An open session.
    pop
        Production span or holdout.
    families
        Which families to read (see the module docstring).
    class_names
        Category id to class name (``class_name`` of per-class features).
    embedder
        Embedder of the embedding families; None skips them.
    budget
        How embedding vectors and scalar values are streamed and bounded (default
        :class:`VectorBudget`).
    against
        The reference's features when ``pop`` is a window checked against them: the
        window's image properties are then also counted by reference rank
        (:mod:`monitor.drift.scalars`).

    Returns
    -------
    FeatureSet
        Arrays keyed by :class:`FeatureKey` (a bounded sample where a side is beyond
        the budget), and the image of each row of the per-object arrays; a class absent
        from ``pop`` has no key.
    """
    budget = budget or VectorBudget()
    result = FeatureSet(n_images=count_images(session, pop))
    if not result.n_images:
        return result
    read_scalar_features(session, pop, families, class_names, budget, result, against)
    if embedder is not None and "image_embedding" in families:
        vectors = _image_embeddings(session, pop, embedder, budget)
        if vectors is not None:
            result.add(FeatureKey("image_embedding", "embedding", "", "embedding"), vectors)
    if embedder is not None and "instance_embedding" in families:
        for cat, (vectors, image_ids) in _instance_embeddings(
            session, pop, embedder, budget
        ).items():
            key = FeatureKey(
                "instance_embedding", "embedding", class_names.get(cat, str(cat)), "embedding"
            )
            result.add(key, vectors, image_ids)
    return result


def latest_embedder(session: Session) -> str | None:
    """Return the embedder the embed job used last that has stored image vectors.

    Falls back to :func:`most_used_embedder` where no embed run was recorded (vectors
    written by other means).
    """
    has_vectors = (
        select(ImageEmbedding.id).where(ImageEmbedding.embedder == EmbedderRecord.name).exists()
    )
    name = session.scalar(
        select(EmbedderRecord.name)
        .where(has_vectors)
        .order_by(EmbedderRecord.last_used_at.desc(), EmbedderRecord.id.desc())
        .limit(1)
    )
    return str(name) if name is not None else most_used_embedder(session)


def most_used_embedder(session: Session) -> str | None:
    """Return the embedder with the most stored image vectors (None when there are none)."""
    row = session.execute(
        select(ImageEmbedding.embedder, func.count().label("n"))
        .group_by(ImageEmbedding.embedder)
        .order_by(func.count().desc(), ImageEmbedding.embedder)
        .limit(1)
    ).first()
    return None if row is None else str(row[0])
