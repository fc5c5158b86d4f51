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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from detectors.registry import FeatureKind
from monitor.drift.chunked import BoundedSample, stream_chunks
from monitor.drift.properties import PROPERTY_NAMES
from monitor.errors import InvalidInputError
from monitor.storage.schema import (
    DatasetImage,
    EmbedderRecord,
    GroundTruthInstance,
    ImageEmbedding,
    ImageProperties,
    InstanceEmbedding,
    ModelVersion,
    PredictedInstance,
    Sample,
    SampleStatus,
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


@dataclass(frozen=True, order=True)
class FeatureKey:
    """Which series a feature array belongs to (``class_name`` is ``""`` for all)."""

    family: str
    feature: str
    class_name: str
    kind: FeatureKind


@dataclass(frozen=True)
class Population:
    """One side of a drift check: a production span, or a holdout dataset.

    Attributes
    ----------
    label
        Stored as ``drift_results.reference`` when this is the reference.
    dataset_id
        The holdout's id, or None for production.
    start, end
        Event-time span ``[start, end)`` of production (by ``samples.captured_at``).
    model_version
        Production only: keep the samples of this model version (by name); None keeps
        every version. A canary comparison reads one population per version.
    """

    label: str
    dataset_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    model_version: str | None = None

    @property
    def is_holdout(self) -> bool:
        """Whether this reads a labeled holdout (ground truth, no scores)."""
        return self.dataset_id is not None


@dataclass
class FeatureSet:
    """Features of one population: images read and one array per :class:`FeatureKey`.

    ``groups`` holds, for the per-object arrays only, the id of the image (sample or
    holdout image) of each row, aligned with the array's rows.
    """

    n_images: int
    arrays: dict[FeatureKey, Float64Array] = field(default_factory=dict)
    groups: dict[FeatureKey, Int64Array] = field(default_factory=dict)

    def add(self, key: FeatureKey, values: Float64Array, images: Int64Array | None = None) -> None:
        """Store one feature array and, for a per-object feature, the image of each row."""
        self.arrays[key] = values
        if images is not None:
            if images.shape != (values.shape[0],):
                raise InvalidInputError(
                    f"{key}: {images.shape[0]} image ids for {values.shape[0]} rows"
                )
            self.groups[key] = images


def boundary_length(mask: npt.NDArray[np.bool_]) -> int:
    """Count foreground pixels with a 4-neighbour outside the mask (or the image).

    Examples
    --------
    >>> m = np.zeros((5, 5), dtype=bool)
    >>> m[1:4, 1:4] = True
    >>> boundary_length(m)
    8
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return int(np.count_nonzero(m[1:-1, 1:-1] & ~inner))


def _rle_boundary(counts: str, height: int, width: int) -> int:
    rle = {"size": [height, width], "counts": counts.encode("ascii")}
    return boundary_length(np.asarray(mask_utils.decode(rle), dtype=bool))


def image_filter(pop: Population) -> ColumnElement[bool]:
    """Return the WHERE clause selecting the images (samples or holdout images) of ``pop``."""
    if pop.dataset_id is not None:
        return DatasetImage.dataset_id == pop.dataset_id
    conditions = [Sample.status == SampleStatus.OK, Sample.captured_at.is_not(None)]
    if pop.start is not None:
        conditions.append(Sample.captured_at >= pop.start)
    if pop.end is not None:
        conditions.append(Sample.captured_at < pop.end)
    if pop.model_version is not None:
        version = select(ModelVersion.id).where(ModelVersion.name == pop.model_version)
        conditions.append(Sample.model_version_id.in_(version))
    return and_(*conditions)


def count_images(session: Session, pop: Population) -> int:
    """Return the number of images (accepted samples, or holdout images) in ``pop``."""
    table = DatasetImage if pop.is_holdout else Sample
    found = session.scalar(select(func.count()).select_from(table).where(image_filter(pop)))
    return int(found or 0)


@dataclass(frozen=True)
class ImageTable:
    """The images of a population as arrays, sorted by id (8 bytes per value, no rows)."""

    ids: Int64Array
    heights: Int64Array
    widths: Int64Array

    def __len__(self) -> int:
        return int(self.ids.size)

    def index(self, image_ids: Int64Array) -> Int64Array:
        """Return the position of each of ``image_ids`` in the table."""
        found: Int64Array = np.searchsorted(self.ids, image_ids).astype(np.int64)
        return found


def _images(session: Session, pop: Population, chunk_rows: int = 10_000) -> ImageTable:
    if pop.is_holdout:
        stmt = select(DatasetImage.id, DatasetImage.height, DatasetImage.width)
    else:
        stmt = select(Sample.id, Sample.height, Sample.width)
    parts = [
        np.asarray([(int(i), int(h or 0), int(w or 0)) for i, h, w in rows], dtype=np.int64)
        for rows in stream_chunks(session, stmt.where(image_filter(pop)), chunk_rows)
    ]
    table = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
    table = table[np.argsort(table[:, 0], kind="stable")]
    return ImageTable(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy())


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


@dataclass(frozen=True)
class VectorBudget:
    """How the embedding families of one side are read: streamed, bounded, seeded.

    Attributes
    ----------
    max_rows
        Vectors kept per feature and side (a window with more is sampled:
        :class:`~monitor.drift.chunked.BoundedSample`).
    chunk_rows
        Rows read from the database at a time.
    seed
        Seeds which rows a sampled window keeps.
    """

    max_rows: int = 5_000
    chunk_rows: int = 10_000
    seed: int = 0


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


def _properties(
    session: Session, pop: Population, chunk_rows: int = 10_000
) -> dict[str, Float64Array]:
    cols = [getattr(ImageProperties, name) for name in PROPERTY_NAMES]
    if pop.is_holdout:
        stmt = select(*cols).join(DatasetImage, DatasetImage.id == ImageProperties.dataset_image_id)
    else:
        stmt = select(*cols).join(Sample, Sample.id == ImageProperties.sample_id)
    parts = [
        np.asarray(rows, dtype=np.float64)
        for rows in stream_chunks(session, stmt.where(image_filter(pop)), chunk_rows)
    ]
    if not parts:
        return {}
    values = np.concatenate(parts)
    return {name: values[:, k] for k, name in enumerate(PROPERTY_NAMES)}


def _object_features(
    pop: Population,
    images: ImageTable,
    instances: list[InstanceRow],
    class_names: Mapping[int, str],
    families: Collection[str],
    out: FeatureSet,
) -> None:
    by_class: dict[int, list[InstanceRow]] = defaultdict(list)
    for inst in instances:
        by_class[inst.category_id].append(inst)

    def image_ids(items: list[InstanceRow]) -> Int64Array:
        return np.asarray([i.image_id for i in items], dtype=np.int64)

    def per_image(items: list[InstanceRow]) -> Float64Array:
        counts = np.bincount(images.index(image_ids(items)), minlength=len(images))
        return counts.astype(np.float64)

    if "mask_geometry" in families:
        for cat, items in by_class.items():
            name = class_names.get(cat, str(cat))
            where = images.index(image_ids(items))
            sizes = zip(images.heights[where].tolist(), images.widths[where].tolist(), strict=True)
            geometry = {
                "area": [float(i.area) for i in items],
                "aspect": [i.bbox_w / max(i.bbox_h, 1.0) for i in items],
                "boundary": [
                    float(_rle_boundary(i.counts, h, w))
                    for i, (h, w) in zip(items, sizes, strict=True)
                ],
            }
            for feature, values in geometry.items():
                key = FeatureKey("mask_geometry", feature, name, "numeric")
                out.add(key, np.asarray(values, dtype=np.float64), image_ids(items))
            # One value per image (zeros included): images are already the unit.
            out.add(FeatureKey("mask_geometry", "count", name, "numeric"), per_image(items))
    if "prediction" in families:
        out.add(
            FeatureKey("prediction", "instances_per_image", "", "numeric"), per_image(instances)
        )
        mix = np.asarray([i.category_id for i in instances], dtype=np.float64)
        key = FeatureKey("prediction", "class_mix", "", "categorical")
        out.add(key, mix, image_ids(instances))
        if not pop.is_holdout:
            for cat, items in by_class.items():
                key = FeatureKey("prediction", "score", class_names.get(cat, str(cat)), "numeric")
                scores = np.asarray([i.score for i in items], dtype=np.float64)
                out.add(key, scores, image_ids(items))


def read_features(
    session: Session,
    pop: Population,
    families: Collection[str],
    class_names: Mapping[int, str],
    embedder: str | None,
    budget: VectorBudget | None = None,
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
        How embedding vectors are streamed and bounded (default :class:`VectorBudget`).

    Returns
    -------
    FeatureSet
        Arrays keyed by :class:`FeatureKey`, and the image of each row of the
        per-object arrays; a class absent from ``pop`` has no key.
    """
    budget = budget or VectorBudget()
    images = _images(session, pop, budget.chunk_rows)
    result = FeatureSet(n_images=len(images))
    if not len(images):
        return result
    if {"mask_geometry", "prediction"} & set(families):
        instances = read_instances(session, pop)
        _object_features(pop, images, instances, class_names, families, result)
    if "image_properties" in families:
        for name, values in _properties(session, pop, budget.chunk_rows).items():
            result.add(FeatureKey("image_properties", name, "", "numeric"), values)
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
