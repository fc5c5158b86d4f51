"""Shadow scoring: how far the reference model agrees with production, without labels.

:func:`compare_instances` (:mod:`monitor.matching`, re-exported here) is the pure core:
production's and the reference's instances on one image are matched one-to-one
regardless of class, maximising the total IoU; per class it counts matched pairs, class
disagreements, production-only and reference-only instances.

:func:`shadow_pending` is the shadow job: it runs the reference model on every accepted
sample it has not scored, maps the reference's classes to the configured categories by
name, compares with the stored production masks and stores a ``ShadowScore`` with its
``ShadowClassScore`` rows per class (read by :mod:`monitor.slo.events` and
:mod:`monitor.prometheus.families`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.embed.tasks import (
    ImageTask,
    LoadedImage,
    load_image,
    max_side,
    paged,
    pending_sample_tasks,
    quarantine_samples,
)
from monitor.errors import InvalidInputError
from monitor.images import ImageAccess, ImageProblem
from monitor.jobs.executor import Cached, Executor, LocalExecutor, ModelSource, model_source
from monitor.matching import ClassAgreement as ClassAgreement
from monitor.matching import Instance as Instance
from monitor.matching import ShadowComparison as ShadowComparison
from monitor.matching import compare_instances as compare_instances
from monitor.matching import mask_ious as mask_ious
from monitor.model.classmap import predict_counting_ignored
from monitor.model.protocol import InstanceSegmenter, category_ids_by_name
from monitor.storage.schema import Category, Sample, SampleStatus, ShadowClassScore, ShadowScore

ProgressFn = Callable[[int, int], None]
"""Called with (samples done, samples pending at the start) after each batch."""


@dataclass
class ShadowReport:
    """What one shadow run did."""

    reference_model: str
    samples: int = 0
    production_instances: int = 0
    reference_instances: int = 0
    matched: int = 0
    production_only: int = 0
    reference_only: int = 0
    class_disagreements: int = 0
    agreement_sum: Fraction = Fraction(0)
    """Exact sum (a fraction), so the mean does not depend on the order batches return in."""
    quarantined: Counter[str] = field(default_factory=Counter)
    reference_ignored: Counter[str] = field(default_factory=Counter)
    """Reference instances of classes its ``classes_map`` leaves out, by its class name."""
    executor: dict[str, Any] = field(default_factory=dict)
    """Where the batches ran: the executor's stats at the end of the run."""

    @property
    def mean_agreement(self) -> float | None:
        """Mean image agreement of the scored samples (None when none was scored)."""
        return float(self.agreement_sum / self.samples) if self.samples else None

    def counts(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return {
            "reference_model": self.reference_model,
            "samples": self.samples,
            "production_instances": self.production_instances,
            "reference_instances": self.reference_instances,
            "matched": self.matched,
            "production_only": self.production_only,
            "reference_only": self.reference_only,
            "class_disagreements": self.class_disagreements,
            "mean_agreement": self.mean_agreement,
            "quarantined": dict(sorted(self.quarantined.items())),
            "reference_ignored": dict(sorted(self.reference_ignored.items())),
            "executor": self.executor,
        }

    def add(self, comparison: ShadowComparison) -> None:
        """Count one scored image."""
        self.samples += 1
        self.production_instances += comparison.n_production
        self.reference_instances += comparison.n_reference
        self.agreement_sum += Fraction(comparison.agreement)
        for c in comparison.classes.values():
            self.matched += c.matched
            self.production_only += c.production_only
            self.reference_only += c.reference_only
            self.class_disagreements += c.class_disagreements


def reference_category_ids(session: Session, model: InstanceSegmenter) -> dict[int, int]:
    """Map the model's category ids (1-based) to the configured ones, by class name.

    Raises
    ------
    InvalidInputError
        If a class of the model is not a configured category; the message names it.
    """
    configured = {c.id: c.name for c in session.scalars(select(Category))}
    return category_ids_by_name(model.name, model.categories, configured)


def _done(reference: str) -> Any:
    return exists().where(
        ShadowScore.sample_id == Sample.id, ShadowScore.reference_model == reference
    )


def _reference_instances(
    model: InstanceSegmenter, loaded: Sequence[LoadedImage], categories: Mapping[int, int]
) -> tuple[list[list[Instance]], Counter[str]]:
    """Return the reference's instances per image (configured ids) and what it left out."""
    images = [item.image for item in loaded if item.image is not None]
    predicted, ignored = predict_counting_ignored(model, images)
    if len(predicted) != len(images):
        raise InvalidInputError(
            f"model {model.name!r} returned predictions for {len(predicted)} of {len(images)} images"
        )
    out: list[list[Instance]] = []
    for image, instances in zip(images, predicted, strict=True):
        found: list[Instance] = []
        for inst in instances:
            if inst.category_id not in categories or inst.mask.shape != image.shape[:2]:
                raise InvalidInputError(
                    f"model {model.name!r} predicted category {inst.category_id} with a mask of "
                    f"{inst.mask.shape} on a {image.shape[:2]} image; it has "
                    f"{len(categories)} categories"
                )
            found.append((categories[inst.category_id], inst.mask))
        out.append(found)
    return out, ignored


@dataclass(frozen=True)
class ShadowBatch:
    """One batch's comparisons, as a worker returns them to the driver (no pixels).

    Attributes
    ----------
    tasks
        The batch's tasks, in order.
    problems
        Per task, why its image could not be used (None: scored).
    comparisons
        The readable tasks' comparisons, in order.
    ignored
        Reference instances of classes its ``classes_map`` leaves out, by class name.
    """

    tasks: tuple[ImageTask, ...]
    problems: tuple[ImageProblem | None, ...]
    comparisons: tuple[ShadowComparison, ...]
    ignored: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class ShadowWork:
    """The shadow job's batch work: read each image, predict, compare with production.

    Runs in the driver's process or on a Dask worker (``model`` is then a
    :class:`~monitor.jobs.executor.Cached` recipe the worker builds once).
    """

    model: ModelSource[InstanceSegmenter]
    categories: Mapping[int, int]
    min_iou: float = 0.1
    access: ImageAccess | None = None
    side: int | None = None

    def load(self, task: ImageTask) -> LoadedImage:
        """Decode one task's image and masks (never raises)."""
        return load_image(task, self.access, self.side)

    def compute(self, loaded: list[LoadedImage]) -> ShadowBatch:
        """Predict the readable images of a batch and compare with production's masks."""
        model = self.model.get()
        readable = [item for item in loaded if item.problem is None]
        references: list[list[Instance]] = []
        ignored: Counter[str] = Counter()
        if readable:
            references, ignored = _reference_instances(model, readable, self.categories)
        comparisons = []
        for item, found in zip(readable, references, strict=True):
            production = [
                (m.category_id, mask) for m, mask in zip(item.task.masks, item.masks, strict=True)
            ]
            comparisons.append(compare_instances(production, found, min_iou=self.min_iou))
        return ShadowBatch(
            tuple(item.task for item in loaded),
            tuple(item.problem for item in loaded),
            tuple(comparisons),
            ignored,
        )


def shadow_pending(
    sessions: sessionmaker[Session],
    reference_model: InstanceSegmenter,
    clock: Clock,
    *,
    min_iou: float = 0.1,
    batch_size: int = 16,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    workers: int = 4,
    access: ImageAccess | None = None,
    executor: Executor | None = None,
    recipe: Cached[InstanceSegmenter] | None = None,
) -> ShadowReport:
    """Score every accepted sample the reference model has not scored yet.

    Parameters
    ----------
    sessions
        Session factory of a migrated database with the configured categories.
    reference_model
        The reference; its ``name`` is stored as ``reference_model``.
    clock
        Stamps ``computed_at``.
    min_iou
        Pairs below this IoU are not matched.
    batch_size
        Images per model call (and per transaction).
    limit
        At most this many samples; None for all.
    progress
        Told (samples done, samples pending at the start) after each batch.
    workers
        Threads decoding images and masks ahead of the model.
    access
        Byte and pixel caps of the image reader (beyond them: quarantined as
        ``image_too_large``); images larger than the reference needs are compared
        shrunk (:func:`~monitor.embed.tasks.max_side`).
    executor
        Where batches run (:mod:`monitor.jobs.executor`); None: in this process, with
        ``workers`` loader threads.
    recipe
        How a remote executor's workers build the reference model (each once);
        required when ``executor`` is remote.

    Returns
    -------
    ShadowReport
        Samples scored, instance counts, mean agreement, samples quarantined by reason.

    Raises
    ------
    InvalidInputError
        If a class of the reference model is not a configured category, or the model
        returns predictions that break the protocol.
    ConfigError
        If ``executor`` is remote and no ``recipe`` says how its workers load the model.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    name = reference_model.name
    with sessions() as session:
        categories = reference_category_ids(session, reference_model)
        pending = session.scalar(
            select(func.count())
            .select_from(Sample)
            .where(Sample.status == SampleStatus.OK, ~_done(name))
        )
    total = int(pending or 0) if limit is None else min(int(pending or 0), limit)
    report = ShadowReport(reference_model=name)

    def fetch(after: int, n: int) -> list[ImageTask]:
        with sessions() as session:
            return pending_sample_tasks(session, _done(name), after, n)

    executor = executor or LocalExecutor(workers=workers)
    source = model_source(reference_model, executor, recipe)
    work = ShadowWork(source, categories, min_iou, access, max_side(reference_model))
    done = 0
    for batch in executor.map_batches(work, paged(fetch, batch_size, limit)):
        readable = [t for t, p in zip(batch.tasks, batch.problems, strict=True) if p is None]
        with sessions.begin() as session:
            stored = _store(session, readable, batch.comparisons, name, clock.now())
            problems = {
                t.owner_id: p for t, p in zip(batch.tasks, batch.problems, strict=True) if p
            }
            quarantine_samples(session, problems, "shadow")
        for problem in batch.problems:
            if problem is not None:
                report.quarantined[problem.reason.value] += 1
        for comparison in stored:
            report.add(comparison)
        report.reference_ignored.update(batch.ignored)
        done += len(batch.tasks)
        if progress:
            progress(done, total)
    report.executor = executor.stats().as_dict()
    return report


def _store(
    session: Session,
    tasks: Sequence[ImageTask],
    comparisons: Sequence[ShadowComparison],
    reference: str,
    now: datetime,
) -> list[ShadowComparison]:
    """Insert the comparisons of samples not scored yet by ``reference``; return those.

    Idempotent by key (sample, reference model): a batch computed twice, or a run racing
    another, stores nothing twice.
    """
    ids = [t.owner_id for t in tasks]
    scored = set(
        session.scalars(
            select(ShadowScore.sample_id).where(
                ShadowScore.reference_model == reference, ShadowScore.sample_id.in_(ids)
            )
        )
    )
    fresh = [(i, c) for i, c in zip(ids, comparisons, strict=True) if i not in scored]
    if not fresh:
        return []
    sample_ids = [i for i, _ in fresh]
    comparisons = [c for _, c in fresh]
    rows = [
        {
            "sample_id": sample_id,
            "reference_model": reference,
            "computed_at": now,
            "n_production": c.n_production,
            "n_reference": c.n_reference,
            "n_matched": c.n_matched,
            "mean_iou": c.mean_iou,
            "agreement": c.agreement,
        }
        for sample_id, c in zip(sample_ids, comparisons, strict=True)
    ]
    inserted = list(
        session.execute(
            insert(ShadowScore).returning(ShadowScore.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    class_rows = [
        {
            "shadow_score_id": score_id,
            "category_id": category_id,
            "matched": counts.matched,
            "production_only": counts.production_only,
            "reference_only": counts.reference_only,
            "class_disagreements": counts.class_disagreements,
            "ious": list(counts.ious),
        }
        for score_id, c in zip(inserted, comparisons, strict=True)
        for category_id, counts in c.classes.items()
    ]
    if class_rows:
        session.execute(insert(ShadowClassScore), class_rows)
    return list(comparisons)
