"""Candidates of a queue fill: stored samples turned into a :class:`~sampling.selection.CandidateTable`.

A candidate is an accepted sample captured in ``[now - queue.lookback, now)`` that has no
``queue_items`` row yet. Its signals (each in [0, 1], NaN where the sample has none):

``uncertainty_max`` / ``uncertainty_mean``
    :func:`sampling.uncertainty.instance_uncertainty` of its predicted instances (score
    vs ``queue.uncertainty_threshold``, class scores), max and mean over the image; NaN
    for an image with no prediction.
``disagreement``
    :func:`sampling.disagreement.image_disagreement` of its latest shadow row (summed over
    the per-class rows); NaN without a shadow row.
``image_novelty``
    :class:`sampling.novelty.KNNNovelty` of its image embedding against the reference's
    (``queue.reference``, else ``drift.reference``); NaN without an embedding or reference.
``instance_novelty``
    The largest per-class novelty of its instance embeddings against the reference's
    instances of the same class (a class with at most ``novelty_k`` reference vectors
    gives none); NaN without any.
``drift``
    1 inside a window whose drift check fired, 0 inside checked windows that did not
    fire, NaN where no check covered its capture time.

Samples are read in pages of ``page_size`` ids (keyset pagination), so memory holds one
page of instances at a time plus the per-sample results. When an embedder has stored
vectors, samples not yet embedded are left for a later fill (``n_waiting``): diversity
needs every candidate's vector.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Text, and_, func, select, type_coerce
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from monitor.config import DateRange, QueueSettings
from monitor.drift.features import Population, latest_embedder, read_features
from monitor.drift.job import resolve_reference
from monitor.errors import SegmonError
from monitor.slo.duration import parse_duration
from monitor.storage.schema import (
    DriftResultRow,
    ImageEmbedding,
    InstanceEmbedding,
    PredictedInstance,
    QueueItem,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
)
from monitor.storage.vectors import vectors_from_bytes
from sampling.disagreement import image_disagreement
from sampling.drift_context import in_fired_windows
from sampling.novelty import KNNNovelty
from sampling.selection import CandidateTable
from sampling.signals import SIGNALS
from sampling.uncertainty import image_uncertainty, instance_uncertainty

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "Candidates", "NoveltyReference", "read_candidates"]

PAGE_SIZE = 2000
"""Samples read per page."""


@dataclass(frozen=True)
class Candidates:
    """What a fill chooses from.

    Attributes
    ----------
    table
        Keys (sample ids), signals, embeddings, hashes, classes, instance counts.
    captured_at
        Capture time of each candidate, aligned with ``table.keys``.
    n_waiting
        Samples in the span left out because they have no image embedding yet.
    reference
        Label of the novelty reference, or None when novelty was unavailable.
    embedder
        Whose vectors were read, or None.
    """

    table: CandidateTable
    captured_at: tuple[datetime, ...]
    n_waiting: int
    reference: str | None
    embedder: str | None


@dataclass
class NoveltyReference:
    """Novelty scorers fitted once on the reference: images, and instances per class."""

    label: str | None
    image: KNNNovelty | None
    by_class: dict[int, KNNNovelty]

    @classmethod
    def fit(
        cls, session: Session, pop: Population | None, embedder: str | None, k: int
    ) -> NoveltyReference:
        """Fit on the reference's stored vectors (no scorer where too few vectors exist)."""
        if pop is None or embedder is None:
            return cls(None, None, {})
        class_ids = {cid: str(cid) for cid in _category_ids(session)}
        features = read_features(
            session, pop, ("image_embedding", "instance_embedding"), class_ids, embedder
        )
        image: KNNNovelty | None = None
        by_class: dict[int, KNNNovelty] = {}
        for key, vectors in features.arrays.items():
            if vectors.shape[0] <= k:
                continue  # too few reference vectors for k neighbours: no signal
            scorer = KNNNovelty(k=k).fit(vectors.astype(np.float64))
            if key.family == "image_embedding":
                image = scorer
            elif key.family == "instance_embedding":
                by_class[int(key.class_name)] = scorer
        return cls(pop.label, image, by_class)


def _category_ids(session: Session) -> list[int]:
    from monitor.storage.schema import Category

    return [int(c) for c in session.scalars(select(Category.id))]


def _population(
    session: Session, settings: QueueSettings, drift_reference: str | DateRange | None
) -> Population | None:
    configured = settings.reference if settings.reference is not None else drift_reference
    try:
        return resolve_reference(session, configured)
    except SegmonError as exc:
        if configured is not None:
            raise
        log.info("queue: no novelty reference (%s); novelty signals left out", exc)
        return None


def _pages(
    session: Session, start: datetime, end: datetime, page_size: int
) -> Iterator[list[tuple[int, datetime, str | None]]]:
    """Yield the candidates' ids, capture times and hashes, ``page_size`` at a time.

    One query lists them (three small values per sample); each page's instances,
    vectors and shadow rows are then read page by page.
    """
    queued = select(QueueItem.id).where(QueueItem.sample_id == Sample.id).exists()
    rows = session.connection().execute(
        select(Sample.id, Sample.captured_at, Sample.image_sha256)
        .where(
            Sample.status == SampleStatus.OK,
            Sample.captured_at >= start,
            Sample.captured_at < end,
            ~queued,
        )
        .order_by(Sample.id)
    )
    page: list[tuple[int, datetime, str | None]] = []
    for sample_id, at, sha in rows:
        if at is None:  # excluded by the WHERE clause; typed as optional
            continue
        page.append((int(sample_id), at, sha))
        if len(page) == page_size:
            yield page
            page = []
    if page:
        yield page


def _epoch(when: datetime) -> float:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.timestamp()


@dataclass
class _Columns:
    """Per-sample results of every page so far, in candidate order."""

    keys: list[int]
    captured: list[datetime]
    hashes: list[str | None]
    classes: list[frozenset[int]]
    n_instances: list[int]
    signals: dict[str, list[Float64Array]]
    vectors: list[Float64Array | None]


def read_candidates(
    session: Session,
    settings: QueueSettings,
    now: datetime,
    *,
    drift_reference: str | DateRange | None = None,
    page_size: int = PAGE_SIZE,
    span: tuple[datetime, datetime] | None = None,
) -> Candidates:
    """Read the candidates of a fill at ``now`` with their signals.

    Parameters
    ----------
    session
        An open session (read only).
    settings
        The ``queue`` settings: look-back, threshold, k, reference, embedder.
    now
        The fill's time (the end of the look-back span).
    drift_reference
        ``drift.reference``, the novelty reference when ``queue.reference`` is unset.
    page_size
        Samples per page.
    span
        Candidates captured in ``[start, end)`` instead of the look-back span (a past
        period: ``segmon queue fill --from --to``).

    Raises
    ------
    NotFoundError
        If ``queue.reference`` names a holdout that does not exist.
    """
    start, now = span if span is not None else (now - parse_duration(settings.lookback), now)
    embedder = settings.embedder or latest_embedder(session)
    pop = _population(session, settings, drift_reference)
    reference = NoveltyReference.fit(session, pop, embedder, settings.novelty_k)
    windows, fired = _drift_windows(session, start, now)
    cols = _Columns([], [], [], [], [], {name: [] for name in SIGNALS}, [])
    for page in list(_pages(session, start, now, page_size)):
        _read_page(session, page, settings, reference, embedder, windows, fired, cols)
    return _assemble(cols, reference.label, embedder)


def _drift_windows(
    session: Session, start: datetime, end: datetime
) -> tuple[Float64Array, Float64Array]:
    """``[start, end)`` epoch seconds of every drift window overlapping the span, and of those that fired."""
    rows = session.execute(
        select(
            DriftResultRow.window_start, DriftResultRow.window_end, DriftResultRow.drift_detected
        )
        .where(DriftResultRow.window_end > start, DriftResultRow.window_start < end)
        .distinct()
    ).all()
    every = sorted({(_epoch(s), _epoch(e)) for s, e, _ in rows})
    hit = sorted({(_epoch(s), _epoch(e)) for s, e, flagged in rows if flagged})
    return (
        np.asarray(every, dtype=np.float64).reshape(-1, 2),
        np.asarray(hit, dtype=np.float64).reshape(-1, 2),
    )


def _read_page(
    session: Session,
    page: Sequence[tuple[int, datetime, str | None]],
    settings: QueueSettings,
    reference: NoveltyReference,
    embedder: str | None,
    windows: Float64Array,
    fired: Float64Array,
    cols: _Columns,
) -> None:
    ids = [sample_id for sample_id, _, _ in page]
    index = {sample_id: i for i, sample_id in enumerate(ids)}
    n = len(ids)
    signals: dict[str, Float64Array] = {}

    # Uncertainty and classes, from the predicted instances.
    pi = PredictedInstance
    # Core rows and one JSON decode of every class-score list: per-row ORM and JSON
    # processing dominated a 100,000-sample fill.
    rows = (
        session.connection()
        .execute(
            select(pi.sample_id, pi.category_id, pi.score, type_coerce(pi.class_scores, Text))
            .where(pi.sample_id.in_(ids))
            .order_by(pi.id)
        )
        .all()
    )
    classes: list[set[int]] = [set() for _ in range(n)]
    counts = np.zeros(n, dtype=np.int64)
    instance_image = np.asarray([index[int(r[0])] for r in rows], dtype=np.int64)
    for r, at in zip(rows, instance_image, strict=True):
        classes[at].add(int(r[1]))
        counts[at] += 1
    scores = np.asarray([float(r[2]) for r in rows], dtype=np.float64)
    class_lists: list[list[float] | None] = json.loads(
        "[" + ",".join(r[3] if r[3] is not None else "null" for r in rows) + "]"
    )
    width = max((len(c) for c in class_lists if c), default=0)
    class_scores: Float64Array | None = None
    if width:
        class_scores = np.full((len(rows), width), np.nan, dtype=np.float64)
        for i, row_scores in enumerate(class_lists):
            if row_scores:
                class_scores[i, : len(row_scores)] = row_scores
    per_instance = instance_uncertainty(
        scores, class_scores, threshold=settings.uncertainty_threshold
    )
    signals["uncertainty_max"], signals["uncertainty_mean"] = image_uncertainty(
        per_instance, instance_image, n
    )

    # Disagreement, from the latest shadow row of each sample.
    signals["disagreement"] = _disagreement(session, ids, index)

    # Novelty of image and instance embeddings.
    vectors: list[Float64Array | None] = [None] * n
    signals["image_novelty"] = np.full(n, np.nan)
    signals["instance_novelty"] = np.full(n, np.nan)
    if embedder is not None:
        emb = ImageEmbedding
        found = (
            session.connection()
            .execute(
                select(emb.sample_id, emb.dim, emb.vector).where(
                    emb.embedder == embedder, emb.sample_id.in_(ids)
                )
            )
            .all()
        )
        if found:
            dims = {int(d) for _, d, _ in found}
            if len(dims) != 1:
                raise SegmonError(f"image embeddings of {embedder!r} have dims {sorted(dims)}")
            decoded = vectors_from_bytes([bytes(v) for _, _, v in found], dims.pop()).astype(
                np.float64
            )
            rows_at = np.asarray([index[int(s or 0)] for s, _, _ in found], dtype=np.int64)
            for at, vector in zip(rows_at, decoded, strict=True):
                vectors[int(at)] = vector
            if reference.image is not None:
                signals["image_novelty"][rows_at] = reference.image.score(decoded)
        if reference.by_class:
            signals["instance_novelty"] = _instance_novelty(
                session, ids, index, embedder, reference
            )

    # Drift context.
    times = np.asarray([_epoch(at) for _, at, _ in page], dtype=np.float64)
    covered = in_fired_windows(times, windows) if windows.size else np.zeros(n)
    hit = in_fired_windows(times, fired) if fired.size else np.zeros(n)
    signals["drift"] = np.where(covered > 0, hit, np.nan)

    cols.keys.extend(ids)
    cols.captured.extend(at for _, at, _ in page)
    cols.hashes.extend(h for _, _, h in page)
    cols.classes.extend(frozenset(c) for c in classes)
    cols.n_instances.extend(int(c) for c in counts)
    for name in SIGNALS:
        cols.signals[name].append(np.asarray(signals[name], dtype=np.float64))
    cols.vectors.extend(vectors)


def _disagreement(session: Session, ids: Sequence[int], index: Mapping[int, int]) -> Float64Array:
    n = len(ids)
    latest = (
        select(ShadowScore.sample_id, func.max(ShadowScore.id).label("id"))
        .where(ShadowScore.sample_id.between(ids[0], ids[-1]))
        .group_by(ShadowScore.sample_id)
        .subquery()
    )
    rows = (
        session.connection()
        .execute(
            select(
                ShadowScore.id,
                ShadowScore.sample_id,
                ShadowScore.agreement,
                ShadowScore.n_production,
                ShadowScore.n_reference,
            ).join(latest, and_(latest.c.id == ShadowScore.id))
        )
        .all()
    )
    agreement = np.full(n, np.nan)
    n_production = np.zeros(n, dtype=np.int64)
    n_reference = np.zeros(n, dtype=np.int64)
    production_only = np.zeros(n, dtype=np.int64)
    reference_only = np.zeros(n, dtype=np.int64)
    class_disagreements = np.zeros(n, dtype=np.int64)
    score_at: dict[int, int] = {}
    for score_id, sample_id, agree, n_prod, n_ref in rows:
        if sample_id not in index:
            continue  # in the id range, not a candidate
        at = index[int(sample_id)]
        score_at[int(score_id)] = at
        agreement[at] = float(agree)
        n_production[at] = int(n_prod)
        n_reference[at] = int(n_ref)
    if score_at:
        sc = ShadowClassScore
        sums = (
            session.connection()
            .execute(
                select(
                    sc.shadow_score_id,
                    func.sum(sc.production_only),
                    func.sum(sc.reference_only),
                    func.sum(sc.class_disagreements),
                )
                .where(sc.shadow_score_id.in_(list(score_at)))
                .group_by(sc.shadow_score_id)
            )
            .all()
        )
        for score_id, prod_only, ref_only, wrong_class in sums:
            at = score_at[int(score_id)]
            production_only[at] = int(prod_only or 0)
            reference_only[at] = int(ref_only or 0)
            class_disagreements[at] = int(wrong_class or 0)
    return image_disagreement(
        agreement, production_only, reference_only, class_disagreements, n_production, n_reference
    )


def _instance_novelty(
    session: Session,
    ids: Sequence[int],
    index: Mapping[int, int],
    embedder: str,
    reference: NoveltyReference,
) -> Float64Array:
    emb, pi = InstanceEmbedding, PredictedInstance
    rows = (
        session.connection()
        .execute(
            select(pi.sample_id, emb.category_id, emb.dim, emb.vector)
            .join(pi, pi.id == emb.predicted_instance_id)
            .where(emb.embedder == embedder, pi.sample_id.between(ids[0], ids[-1]))
            .order_by(emb.id)
        )
        .all()
    )
    grouped: dict[int, list[tuple[int, int, bytes]]] = defaultdict(list)
    for sample_id, cat, dim, vector in rows:
        if sample_id in index and int(cat) in reference.by_class:
            grouped[int(cat)].append((index[int(sample_id)], int(dim), bytes(vector)))
    out = np.full(len(ids), np.nan)
    for cat, items in grouped.items():
        dim = items[0][1]
        vectors = vectors_from_bytes([v for _, _, v in items], dim).astype(np.float64)
        novelty = reference.by_class[cat].score(vectors)
        at = np.asarray([i for i, _, _ in items], dtype=np.int64)
        np.fmax.at(out, at, novelty)  # fmax skips NaN: the largest known novelty per image
    return out


def _assemble(cols: _Columns, reference: str | None, embedder: str | None) -> Candidates:
    n = len(cols.keys)
    signals = {
        name: (np.concatenate(parts) if parts else np.zeros(0))
        for name, parts in cols.signals.items()
    }
    has_vector = np.asarray([v is not None for v in cols.vectors], dtype=bool)
    keep = has_vector if has_vector.any() else np.ones(n, dtype=bool)
    kept = np.flatnonzero(keep)
    embeddings: Float64Array | None = None
    if has_vector.any():
        embeddings = np.stack([v for v in cols.vectors if v is not None]).astype(np.float64)
    keys: Int64Array = np.asarray(cols.keys, dtype=np.int64)[kept]
    table = CandidateTable(
        keys=keys,
        signals={name: values[kept] for name, values in signals.items()},
        embeddings=embeddings,
        image_hashes=[cols.hashes[i] for i in kept],
        classes=[cols.classes[i] for i in kept],
        n_instances=np.asarray(cols.n_instances, dtype=np.int64)[kept],
    )
    return Candidates(
        table=table,
        captured_at=tuple(cols.captured[i] for i in kept),
        n_waiting=int(n - kept.size),
        reference=reference,
        embedder=embedder,
    )
