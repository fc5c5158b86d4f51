"""Shadow scoring: how far the reference model agrees with production, without labels.

:func:`compare_instances` is the pure core: production's and the reference's instances
on one image are matched one-to-one regardless of class, maximising the total IoU
(Hungarian assignment on the IoU matrix); pairs below ``min_iou`` stay unmatched. Per
class it counts matched pairs and production's classes' class disagreements (both under
production's class), production-only instances (production's class) and reference-only
instances (the reference's class), and lists the matched pairs' IoUs.

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

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment
from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import MaskArray
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
from monitor.model.classmap import predict_counting_ignored
from monitor.model.protocol import InstanceSegmenter, category_ids_by_name
from monitor.storage.schema import Category, Sample, SampleStatus, ShadowClassScore, ShadowScore

ProgressFn = Callable[[int, int], None]
"""Called with (samples done, samples pending at the start) after each batch."""

Instance = tuple[int, MaskArray]
"""A category id and a ``bool`` ``(h, w)`` mask."""


@dataclass(frozen=True)
class ClassAgreement:
    """Shadow counts of one class on one image.

    Attributes
    ----------
    matched
        Matched pairs whose production instance has this class.
    production_only
        Production instances of this class the reference did not match.
    reference_only
        Reference instances of this class production did not match.
    class_disagreements
        Matched pairs counted in ``matched`` whose reference class differs.
    ious
        IoU of each matched pair counted in ``matched``.
    """

    matched: int = 0
    production_only: int = 0
    reference_only: int = 0
    class_disagreements: int = 0
    ious: tuple[float, ...] = ()


@dataclass(frozen=True)
class ShadowComparison:
    """Production against the reference on one image.

    Attributes
    ----------
    n_production, n_reference
        Instances on each side.
    pairs
        Matched ``(production index, reference index, IoU)``, by production index.
    classes
        Counts per category id (classes with no instance on either side are absent).
    agreement
        Sum of the IoUs of matched pairs of the same class over
        ``max(n_production, n_reference)``; 1.0 when both sides are empty.
    """

    n_production: int
    n_reference: int
    pairs: tuple[tuple[int, int, float], ...]
    classes: Mapping[int, ClassAgreement]
    agreement: float

    @property
    def n_matched(self) -> int:
        """Matched pairs, of any classes."""
        return len(self.pairs)

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU of the matched pairs (None when nothing matched)."""
        return float(np.mean([iou for _, _, iou in self.pairs])) if self.pairs else None


def mask_ious(
    production: Sequence[MaskArray], reference: Sequence[MaskArray]
) -> npt.NDArray[np.float64]:
    """IoU of every production mask (rows) with every reference mask (columns).

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> mask_ious([a], [a, ~a]).tolist()
    [[1.0, 0.0]]
    """
    if not production or not reference:
        return np.zeros((len(production), len(reference)), dtype=np.float64)
    shapes = {m.shape for m in (*production, *reference)}
    if len(shapes) != 1:
        raise InvalidInputError(f"masks of one image must share a size, got {sorted(shapes)}")

    def encode(masks: Sequence[MaskArray]) -> list[dict[str, Any]]:
        stack = np.asfortranarray(np.stack(masks, axis=-1).astype(np.uint8))
        encoded: list[dict[str, Any]] = mask_utils.encode(stack)
        return encoded

    ious = mask_utils.iou(encode(production), encode(reference), [0] * len(reference))
    return np.asarray(ious, dtype=np.float64).reshape(len(production), len(reference))


def compare_instances(
    production: Sequence[Instance], reference: Sequence[Instance], *, min_iou: float = 0.1
) -> ShadowComparison:
    """Match production's instances to the reference's on one image and count per class.

    Parameters
    ----------
    production, reference
        ``(category_id, mask)`` per instance; masks are ``bool`` arrays of one size.
    min_iou
        Pairs below this IoU are not matched, in ``(0, 1]``.

    Returns
    -------
    ShadowComparison
        Matched pairs, per-class counts and the image's agreement.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> masks = [rng.random((16, 16)) < 0.3 for _ in range(3)]
    >>> same = compare_instances([(1, m) for m in masks], [(1, m) for m in masks])
    >>> same.agreement, same.classes[1].matched
    (1.0, 3)
    >>> relabeled = [(1, masks[0]), (2, masks[1])]  # masks[2] not found by the reference
    >>> c = compare_instances([(1, m) for m in masks], relabeled)
    >>> round(c.agreement, 4), c.classes[1]
    (0.3333, ClassAgreement(matched=2, production_only=1, reference_only=0, class_disagreements=1, ious=(1.0, 1.0)))
    """
    if not 0.0 < min_iou <= 1.0:
        raise InvalidInputError(f"min_iou must be in (0, 1], got {min_iou!r}")
    ious = mask_ious([m for _, m in production], [m for _, m in reference])
    candidate = np.where(ious >= min_iou, ious, 0.0)
    rows, cols = linear_sum_assignment(candidate, maximize=True)
    pairs = tuple(
        (int(r), int(c), float(ious[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if ious[r, c] >= min_iou
    )
    counts: dict[int, Counter[str]] = {}
    class_ious: dict[int, list[float]] = {}
    same_class_iou = 0.0
    for p, r, iou in pairs:
        cat = production[p][0]
        counts.setdefault(cat, Counter())["matched"] += 1
        class_ious.setdefault(cat, []).append(iou)
        if reference[r][0] != cat:
            counts[cat]["class_disagreements"] += 1
        else:
            same_class_iou += iou
    matched_p = {p for p, _, _ in pairs}
    matched_r = {r for _, r, _ in pairs}
    for i, (cat, _) in enumerate(production):
        if i not in matched_p:
            counts.setdefault(cat, Counter())["production_only"] += 1
    for j, (cat, _) in enumerate(reference):
        if j not in matched_r:
            counts.setdefault(cat, Counter())["reference_only"] += 1
    classes = {
        cat: ClassAgreement(
            matched=c["matched"],
            production_only=c["production_only"],
            reference_only=c["reference_only"],
            class_disagreements=c["class_disagreements"],
            ious=tuple(class_ious.get(cat, ())),
        )
        for cat, c in sorted(counts.items())
    }
    largest = max(len(production), len(reference))
    agreement = same_class_iou / largest if largest else 1.0
    return ShadowComparison(len(production), len(reference), pairs, classes, agreement)


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
