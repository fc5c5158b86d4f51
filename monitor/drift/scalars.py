"""Scalar drift features of large windows: read a chunk of images at a time, kept bounded.

The scalar families (``image_properties``, ``mask_geometry``, ``prediction``) hold one
number per image or per object. A window of a million images is never read whole: the
images are paged ``chunk_rows`` at a time (by id), the objects of each page are read with
it, their features computed for that page only, and every feature goes into a
:class:`ScalarStream`:

- a bounded seeded sample of at most ``max_values`` values
  (:class:`~monitor.drift.chunked.BoundedSample`, the embeddings' bottom-k by seeded image
  hash: an image's objects stay together, and the same images are kept for every
  per-image feature); a side within the bound is kept whole, in row-id order, so the
  detectors see exactly the arrays they saw before chunking;
- for a window's per-image feature read against the reference (``against``), its values
  counted by reference rank (:func:`~detectors.histogram.counts_below`), summed chunk by
  chunk, and whether any of them equals a reference value.

Which check uses what, when a side is beyond the bound (README: "Drift at scale"):

- Histogram detectors (``jensen_shannon``, ``kl``, ``psi``) on an image property of a
  window beyond the bound use the merged counts of the **whole window** (bins from the
  reference's quantiles: the reference's own values, or its sample when it is beyond the
  bound too) when the pooled sample is tie-free: the reference has no two equal values,
  no window value equals a reference value (both checked exactly, chunk by chunk), and
  the database counts as many distinct values of the property in the window as values.
  The closed-form null then depends only on the sizes and the bins, so the result is the
  detector's ``score`` of the whole window array, exactly
  (:meth:`~detectors.binned.HistogramDetector.score_merged`).
- With ties (integer features such as ``width``, ``count``, ``area``), for per-object
  (grouped) features, for the per-image counts (whose ties the database cannot count)
  and for every permutation-only detector (``kolmogorov_smirnov``, ``wasserstein``,
  ``chi_square``): the bounded samples of both sides are tested, with the detectors'
  calibration unchanged (permutations, whole images for per-object features).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from sqlalchemy import distinct, func, null, select
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from detectors.histogram import MergedCounts, counts_below
from monitor.drift.chunked import BoundedSample, stream_chunks
from monitor.drift.population import (
    FeatureKey,
    FeatureSet,
    Population,
    VectorBudget,
    image_filter,
)
from monitor.drift.properties import PROPERTY_NAMES
from monitor.storage.schema import (
    DatasetImage,
    GroundTruthInstance,
    ImageProperties,
    PredictedInstance,
    Sample,
)


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


class ScalarStream:
    """One scalar feature of one side, offered a chunk at a time.

    Parameters
    ----------
    k
        Values kept (``max_values``); more are a seeded bottom-k sample by image.
    seed
        Seeds which images a sample keeps.
    reference
        For a window's per-image feature: the reference's values of that feature, to
        count the window's values against (:func:`~detectors.histogram.counts_below`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref, ids, values = rng.normal(size=50), np.arange(1000), rng.normal(size=1000)
    >>> stream = ScalarStream(100, seed=0, reference=ref)
    >>> for start in range(0, 1000, 300):
    ...     stream.add(ids[start : start + 300], values[start : start + 300])
    >>> merged = stream.merged(window_distinct=True)
    >>> stream.seen, stream.values().size, merged.n_current, merged.n_reference
    (1000, 100, 1000, 50)
    """

    def __init__(self, k: int, seed: int, reference: Float64Array | None = None) -> None:
        self._sample = BoundedSample(k, seed)
        self._reference = None if reference is None else np.sort(reference)
        self._below: Int64Array | None = None
        self._reference_ties = False
        if self._reference is not None:
            self._below = np.zeros(self._reference.size + 1, dtype=np.int64)
            self._reference_ties = bool(np.unique(self._reference).size < self._reference.size)

    @property
    def seen(self) -> int:
        """Values offered so far."""
        return self._sample.seen

    @property
    def sampled(self) -> bool:
        """Whether more values were offered than are kept."""
        return self._sample.seen > self._sample.k

    def add(self, ids: Int64Array, values: Float64Array, groups: Int64Array | None = None) -> None:
        """Offer a chunk: row ids, their values and (per-object) the image of each row."""
        if ids.size == 0:
            return
        self._sample.add(ids, values[:, None], groups)
        if self._reference is not None and self._below is not None:
            self._below += counts_below(self._reference, values)
            at = np.searchsorted(self._reference, values, side="left")
            inside = at < self._reference.size
            if np.any(self._reference[at[inside]] == values[inside]):
                self._reference_ties = True

    def values(self) -> Float64Array:
        """Return the kept values, in row-id order."""
        if not self.seen:
            return np.zeros(0, dtype=np.float64)
        kept: Float64Array = self._sample.vectors()[:, 0]
        return kept

    def groups(self) -> Int64Array:
        """Return the image of each kept value, in row-id order."""
        return self._sample.groups()

    def admits(self, ids: Int64Array, groups: Int64Array | None = None) -> npt.NDArray[np.bool_]:
        """Return whether each row could still be kept (see :meth:`BoundedSample.admits`)."""
        return self._sample.admits(ids, groups)

    def merged(self, window_distinct: bool) -> MergedCounts | None:
        """Return the window's counts by reference rank, or None without a reference.

        ``window_distinct``: whether the window's values are known to be all different
        (the database counted them); with the reference checks of :meth:`add` it makes
        the counts ``tie_free``.
        """
        if self._below is None:
            return None
        return MergedCounts(self._below.copy(), window_distinct and not self._reference_ties)

    def store(self, out: FeatureSet, key: FeatureKey, grouped: bool) -> None:
        """Put the kept values (and, grouped, their images) into ``out`` under ``key``."""
        out.add(key, self.values(), self.groups() if grouped else None)
        out.seen[key] = self.seen


@dataclass(frozen=True)
class _Page:
    """One page of a population's images and the objects on them."""

    ids: Int64Array
    heights: Int64Array
    widths: Int64Array
    objects: list[Any]  # (id, image id, category, score or None, bbox w, bbox h, area, counts)

    def position(self, image_ids: Int64Array) -> Int64Array:
        found: Int64Array = np.searchsorted(self.ids, image_ids).astype(np.int64)
        return found


def _pages(session: Session, pop: Population, chunk_rows: int, objects: bool) -> Iterator[_Page]:
    """Yield the images of ``pop`` ``chunk_rows`` at a time by id, with their objects.

    One streamed query (a server-side cursor on PostgreSQL) sorted by id, so each page
    is a range of ids; the objects of a page are read by that range.
    """
    table: Any = DatasetImage if pop.is_holdout else Sample
    stmt = select(table.id, table.height, table.width).where(image_filter(pop)).order_by(table.id)
    for rows in stream_chunks(session, stmt, chunk_rows):
        page = np.asarray([(int(i), int(h or 0), int(w or 0)) for i, h, w in rows], np.int64)
        found = _objects(session, pop, int(page[0, 0]), int(page[-1, 0])) if objects else []
        yield _Page(page[:, 0].copy(), page[:, 1].copy(), page[:, 2].copy(), found)


def _objects(session: Session, pop: Population, first: int, last: int) -> list[Any]:
    """Return the objects on the images of ``pop`` with ids in ``[first, last]``."""
    stmt: Any
    if pop.is_holdout:
        gt = GroundTruthInstance
        no_score = null().label("score")
        stmt = (
            select(gt.id, gt.image_id, gt.category_id, no_score, gt.bbox_w, gt.bbox_h, gt.area)
            .add_columns(gt.rle_counts)
            .join(DatasetImage, DatasetImage.id == gt.image_id)
            .where(gt.iscrowd.is_(False), gt.image_id.between(first, last))
        )
    else:
        pi = PredictedInstance
        stmt = (
            select(pi.id, pi.sample_id, pi.category_id, pi.score, pi.bbox_w, pi.bbox_h, pi.area)
            .add_columns(pi.rle_counts)
            .join(Sample, Sample.id == pi.sample_id)
            .where(pi.sample_id.between(first, last))
        )
    return list(session.execute(stmt.where(image_filter(pop))).all())


def _categories(session: Session, pop: Population) -> list[int]:
    """Return every category with an object in ``pop`` (the per-image counts need all)."""
    stmt: Any
    if pop.is_holdout:
        gt = GroundTruthInstance
        stmt = select(gt.category_id).join(DatasetImage, DatasetImage.id == gt.image_id)
        stmt = stmt.where(gt.iscrowd.is_(False))
    else:
        pi = PredictedInstance
        stmt = select(pi.category_id).join(Sample, Sample.id == pi.sample_id)
    found = session.scalars(stmt.where(image_filter(pop)).distinct())
    return sorted(int(c) for c in found)


class _ObjectStreams:
    """The ``mask_geometry`` and ``prediction`` streams of one population."""

    def __init__(
        self,
        budget: VectorBudget,
        categories: list[int],
        class_names: Mapping[int, str],
        families: Collection[str],
        with_scores: bool,
    ) -> None:
        self.families, self.with_scores, self.categories = families, with_scores, categories
        self.names = {cat: class_names.get(cat, str(cat)) for cat in categories}
        self.k, self.seed = budget.max_values, budget.seed
        self.streams: dict[FeatureKey, tuple[ScalarStream, bool]] = {}

    def _stream(self, key: FeatureKey, grouped: bool, seed: int) -> ScalarStream:
        if key not in self.streams:
            self.streams[key] = (ScalarStream(self.k, seed), grouped)
        return self.streams[key][0]

    def add(self, page: _Page) -> None:
        objects = page.objects
        ids = np.asarray([o[0] for o in objects], dtype=np.int64)
        images = np.asarray([o[1] for o in objects], dtype=np.int64)
        cats = np.asarray([o[2] for o in objects], dtype=np.int64)
        at = page.position(images)
        if "mask_geometry" in self.families:
            for cat in self.categories:
                rows = np.flatnonzero(cats == cat)
                name, seed = self.names[cat], self.seed + 1 + cat
                per_image = np.bincount(at[rows], minlength=page.ids.size).astype(np.float64)
                key = FeatureKey("mask_geometry", "count", name, "numeric")
                self._stream(key, False, self.seed).add(page.ids, per_image)
                if rows.size == 0:
                    continue
                chosen = [objects[i] for i in rows.tolist()]
                # Decoding masks is the costly part: only rows the sample may keep
                # (a row it would drop anyway gets NaN, never kept nor tested).
                boundary_key = FeatureKey("mask_geometry", "boundary", name, "numeric")
                decode = self._stream(boundary_key, True, seed).admits(ids[rows], images[rows])
                geometry = {
                    "area": [float(o[6]) for o in chosen],
                    "aspect": [o[4] / max(o[5], 1.0) for o in chosen],
                    "boundary": [
                        float(_rle_boundary(o[7], int(page.heights[a]), int(page.widths[a])))
                        if keep
                        else float("nan")
                        for o, a, keep in zip(
                            chosen, at[rows].tolist(), decode.tolist(), strict=True
                        )
                    ],
                }
                for feature, values in geometry.items():
                    key = FeatureKey("mask_geometry", feature, name, "numeric")
                    self._stream(key, True, seed).add(
                        ids[rows], np.asarray(values, dtype=np.float64), images[rows]
                    )
        if "prediction" in self.families:  # class_mix is stored even when empty, as before
            per_image = np.bincount(at, minlength=page.ids.size).astype(np.float64)
            key = FeatureKey("prediction", "instances_per_image", "", "numeric")
            self._stream(key, False, self.seed).add(page.ids, per_image)
            key = FeatureKey("prediction", "class_mix", "", "categorical")
            self._stream(key, True, self.seed).add(ids, cats.astype(np.float64), images)
            if self.with_scores:
                scores = np.asarray([o[3] for o in objects], dtype=np.float64)
                for cat in self.categories:
                    rows = np.flatnonzero(cats == cat)
                    key = FeatureKey("prediction", "score", self.names[cat], "numeric")
                    self._stream(key, True, self.seed + 1 + cat).add(
                        ids[rows], scores[rows], images[rows]
                    )

    def store(self, out: FeatureSet) -> None:
        for key, (stream, grouped) in self.streams.items():
            stream.store(out, key, grouped)


def _properties(
    session: Session,
    pop: Population,
    budget: VectorBudget,
    against: FeatureSet | None,
    out: FeatureSet,
) -> None:
    """Stream the image properties of ``pop`` into ``out`` (merged counts for a window)."""
    props = ImageProperties
    cols = [getattr(props, name) for name in PROPERTY_NAMES]
    if pop.is_holdout:
        owner: Any = props.dataset_image_id
        base = select(owner, *cols).join(DatasetImage, DatasetImage.id == owner)
    else:
        owner = props.sample_id
        base = select(owner, *cols).join(Sample, Sample.id == owner)
    keys = [FeatureKey("image_properties", name, "", "numeric") for name in PROPERTY_NAMES]
    streams = [
        ScalarStream(
            budget.max_values,
            budget.seed,
            None if against is None else against.arrays.get(key),
        )
        for key in keys
    ]
    for rows in stream_chunks(session, base.where(image_filter(pop)), budget.chunk_rows):
        table = np.asarray(rows, dtype=np.float64)
        ids = table[:, 0].astype(np.int64)
        for k, stream in enumerate(streams):
            stream.add(ids, table[:, k + 1])
    if not streams[0].seen:
        return
    distinct_counts: list[int] | None = None
    for key, stream in zip(keys, streams, strict=True):
        stream.store(out, key, grouped=False)
        if not stream.sampled or stream.merged(True) is None:
            continue
        if distinct_counts is None:  # one query, only for a window beyond the bound
            counts = [func.count(distinct(c)) for c in cols]
            stmt = base.with_only_columns(*counts).where(image_filter(pop))
            distinct_counts = [int(n) for n in session.execute(stmt).one()]
        merged = stream.merged(distinct_counts[keys.index(key)] == stream.seen)
        if merged is not None and merged.tie_free:
            out.merged[key] = merged


def read_scalar_features(
    session: Session,
    pop: Population,
    families: Collection[str],
    class_names: Mapping[int, str],
    budget: VectorBudget,
    out: FeatureSet,
    against: FeatureSet | None = None,
) -> None:
    """Read the scalar families of ``pop`` into ``out``, a page of images at a time.

    Parameters
    ----------
    session
        An open session.
    pop
        Production span or holdout.
    families
        Which families to read; ``mask_geometry``, ``prediction`` and
        ``image_properties`` are read here.
    class_names
        Category id to class name.
    budget
        ``max_values`` per feature and side, ``chunk_rows`` images per page, ``seed``.
    out
        Receives the arrays, the images of per-object rows, ``seen`` and ``merged``.
    against
        The reference's features, when ``pop`` is a window checked against them (its
        image properties are then also counted by reference rank).
    """
    if {"mask_geometry", "prediction"} & set(families):
        categories = _categories(session, pop)
        objects = _ObjectStreams(
            budget, categories, class_names, families, with_scores=not pop.is_holdout
        )
        for page in _pages(session, pop, budget.chunk_rows, objects=bool(categories)):
            objects.add(page)
        objects.store(out)
    if "image_properties" in families:
        _properties(session, pop, budget, against, out)
