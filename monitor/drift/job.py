"""The drift job: every feature family in rolling windows of production vs a reference.

Steps of :func:`run_drift`:

1. compute missing image properties (:func:`monitor.drift.properties.fill_image_properties`);
2. read the reference's features once: a labeled holdout (its images' embeddings and
   properties, its ground-truth instances' embeddings, geometry and class mix; a
   holdout has no scores, so ``prediction/score`` checks are skipped) or a span of
   production (``{start, end}``);
3. for each configured window length ``L`` (default ``1h`` and ``1d``) take the event-time
   window of production ``[end - L, end)`` by ``samples.captured_at``, where ``end`` is
   ``now`` rounded down to a multiple of ``L`` (since the Unix epoch) -- so every rerun in
   the same period checks the same window and hits the same stored rows;
4. skip (and count) windows with fewer than ``min_samples`` images and checks whose
   reference or window has fewer than ``min_samples`` values -- never store NaN; for a
   per-object feature the values that count are the images the objects lie on;
5. run each family's configured detectors on the features they accept, each seeded from a
   stable hash of the result key, and upsert one ``drift_results`` row per check. A
   per-object feature goes in with the image of each object as its group, so the
   detectors permute whole images (objects of one image are not independent draws) and
   the row records the images (``n_reference_groups``, ``n_current_groups``) beside the
   objects (``n_reference``, ``n_current``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detectors import DriftResult
from detectors._typing import Float64Array, Int64Array
from detectors.binned import HistogramDetector
from detectors.histogram import MergedCounts
from detectors.registry import REGISTRY, make_detector
from monitor.clock import Clock
from monitor.config import DateRange, DriftSettings
from monitor.drift.features import (
    FAMILIES,
    FeatureKey,
    FeatureSet,
    Population,
    VectorBudget,
    count_images,
    latest_embedder,
    read_features,
)
from monitor.drift.properties import PropertiesReport, fill_image_properties
from monitor.errors import ConfigError, InvalidInputError, NotFoundError
from monitor.images import ImageAccess
from monitor.jobs.executor import Executor
from monitor.slo.duration import parse_duration
from monitor.storage.schema import Category, Dataset, DriftResultRow
from monitor.storage.upsert import upsert_rows

__all__ = [
    "DriftReference",
    "DriftReport",
    "StoredCheck",
    "aligned_window",
    "catch_up_spans",
    "check_window",
    "newest_stored_end",
    "read_reference",
    "resolve_reference",
    "run_drift",
    "stable_seed",
    "store_checks",
]


def stable_seed(*parts: str) -> int:
    """Return a seed from a stable hash of ``parts`` (not Python's salted ``hash``).

    Examples
    --------
    >>> stable_seed("prediction", "class_mix", "chi_square")
    2450276923
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def aligned_window(now: datetime, length: timedelta) -> tuple[datetime, datetime]:
    """Return the last whole window before ``now``: ``end`` is a multiple of ``length``.

    Examples
    --------
    >>> start, end = aligned_window(datetime(2026, 11, 23, 10, 42, tzinfo=UTC), timedelta(hours=1))
    >>> start.isoformat(), end.isoformat()
    ('2026-11-23T09:00:00+00:00', '2026-11-23T10:00:00+00:00')
    """
    step = int(length.total_seconds())
    end_s = int(now.timestamp()) // step * step
    end = datetime.fromtimestamp(end_s, UTC)
    return end - length, end


def resolve_reference(session: Session, reference: str | DateRange | None) -> Population:
    """Turn the ``drift.reference`` setting into a :class:`Population`.

    Raises
    ------
    NotFoundError
        If the named holdout does not exist.
    ConfigError
        If no reference is set and there is not exactly one holdout to default to.
    """
    if isinstance(reference, DateRange):
        start, end = reference.start.astimezone(UTC), reference.end.astimezone(UTC)
        label = f"production:{start.isoformat()}/{end.isoformat()}"
        return Population(label=label, start=start, end=end)
    if reference is None:
        names = list(  # labelled production samples are production, not a reference
            session.scalars(
                select(Dataset.name).where(Dataset.kind == "holdout").order_by(Dataset.name)
            )
        )
        if len(names) != 1:
            raise ConfigError(
                f"drift.reference is not set and there are {len(names)} holdouts {names}; "
                "set it to a holdout name or {start, end}"
            )
        reference = names[0]
    dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == reference))
    if dataset_id is None:
        raise NotFoundError(f"drift.reference: no holdout named {reference!r}")
    return Population(label=f"holdout:{reference}", dataset_id=int(dataset_id))


@dataclass(frozen=True)
class StoredCheck:
    """One check as stored: its key and the detector's result."""

    family: str
    class_name: str
    reference: str
    window: str
    window_start: datetime
    window_end: datetime
    detector: str
    result: DriftResult
    embedder: str | None = None
    """Whose vectors an embedding family compared (None for the other families)."""

    def columns(self) -> dict[str, Any]:
        """Return the ``drift_results`` column values of this check."""
        r = self.result
        return {
            "family": self.family,
            "feature": r.feature,
            "detector": self.detector,
            "class_name": self.class_name,
            "reference": self.reference,
            "embedder": self.embedder,
            "window": self.window,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "statistic": r.statistic,
            "threshold": r.threshold,
            "p_value": r.p_value,
            "drift_detected": r.drift_detected,
            "n_reference": r.n_reference,
            "n_current": r.n_current,
            "n_reference_groups": r.n_reference_groups,
            "n_current_groups": r.n_current_groups,
            "details": {k: float(v) for k, v in r.details.items()},
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form (what ``segmon drift --json`` prints)."""
        out = self.columns()
        out["window_start"] = self.window_start.isoformat()
        out["window_end"] = self.window_end.isoformat()
        return out


@dataclass
class DriftReport:
    """What one drift run did."""

    reference: str = ""
    embedder: str | None = None
    properties: PropertiesReport = field(default_factory=PropertiesReport)
    checks: list[StoredCheck] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)
    skipped_windows: int = 0
    windows_behind: int = 0
    """Missed windows a catch-up bound left for the next run."""
    skipped_checks: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        """Return counts for the job-run row."""
        return {
            "reference": self.reference,
            "embedder": self.embedder,
            "image_properties": self.properties.counts(),
            "windows": self.windows,
            "skipped_windows": self.skipped_windows,
            "windows_behind": self.windows_behind,
            "skipped_checks": dict(sorted(self.skipped_checks.items())),
            "checks": len(self.checks),
            "drift_detected": sum(c.result.drift_detected for c in self.checks),
        }


_KEY_COLUMNS = ("family", "feature", "detector", "class_name", "reference", "window", "window_end")


def _upsert(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    upsert_rows(session, DriftResultRow, rows, _KEY_COLUMNS)


def _row(check: StoredCheck, computed_at: datetime, run_id: int | None) -> dict[str, Any]:
    return {"run_id": run_id, "computed_at": computed_at, **check.columns()}


def feature_checks(
    settings: DriftSettings,
    reference: FeatureSet,
    current: FeatureSet,
    ref_label: str,
    window: str,
    span: tuple[datetime, datetime],
    skipped: Counter[str],
    embedder: str | None = None,
) -> list[StoredCheck]:
    """Run the configured detectors on every feature both sides have.

    ``reference`` is fitted, ``current`` scored; per-object arrays pass their images as
    groups (the detectors permute whole images). Keys missing on one side, too small
    or degenerate are counted in ``skipped`` by reason.
    """
    out: list[StoredCheck] = []
    for key in sorted(set(reference.arrays) | set(current.arrays)):
        if key not in reference.arrays:
            skipped["missing_in_reference"] += 1
            continue
        if key not in current.arrays:
            skipped["missing_in_window"] += 1
            continue
        ref, cur = reference.arrays[key], current.arrays[key]
        groups = (reference.groups.get(key), current.groups.get(key))
        merged = current.merged.get(key)  # a window beyond the bound, tie-free
        if min(_units(ref, groups[0]), _units(cur, groups[1])) < settings.min_samples:
            skipped["too_few_samples"] += 1
            continue
        for name in getattr(settings.detectors, key.family):
            if REGISTRY[name].kind != key.kind:
                continue
            out_check = _check(
                settings, key, name, ref_label, window, span, (ref, cur), groups, merged
            )
            if out_check is None:
                skipped["degenerate"] += 1
            elif key.kind == "embedding":
                out.append(dataclasses.replace(out_check, embedder=embedder))
            else:
                out.append(out_check)
    return out


def _units(values: Float64Array, images: Int64Array | None) -> int:
    """Independent units of one side of a check: its images (per-object) or its rows."""
    if images is None:
        return int(values.shape[0])
    return int(np.unique(images).size)


def _check(
    settings: DriftSettings,
    key: FeatureKey,
    name: str,
    ref_label: str,
    window: str,
    span: tuple[datetime, datetime],
    data: tuple[Float64Array, Float64Array],
    groups: tuple[Int64Array | None, Int64Array | None],
    merged: MergedCounts | None = None,
) -> StoredCheck | None:
    """Run one detector on one feature; None when the data are degenerate.

    A histogram detector given ``merged`` (the whole window counted by reference rank,
    tie-free) scores those counts; every other check scores the arrays (for a side
    beyond ``drift.max_values``, its bounded sample).
    """
    seed = stable_seed(
        key.family, key.feature, name, key.class_name, ref_label, window, span[1].isoformat()
    )
    detector = make_detector(name, alpha=settings.alpha, seed=seed, feature=key.feature)
    try:
        detector.fit(data[0], groups=groups[0])
        if merged is not None and isinstance(detector, HistogramDetector):
            result = detector.score_merged(merged)
        else:
            result = detector.score(data[1], groups=groups[1])
    except InvalidInputError:  # e.g. PCA of a constant sample: nothing to compare
        return None
    return StoredCheck(
        key.family, key.class_name, ref_label, window, span[0], span[1], name, result
    )


@dataclass(frozen=True)
class DriftReference:
    """The reference side of every check of one run, read once.

    Attributes
    ----------
    population
        The holdout or production span (its ``label`` is ``drift_results.reference``).
    embedder
        Whose vectors the embedding families compare.
    class_names
        Category id to class name.
    features
        The reference's feature arrays.
    """

    population: Population
    embedder: str | None
    class_names: dict[int, str]
    features: FeatureSet
    budget: VectorBudget
    """How many vectors per feature and side, read in chunks of how many rows."""


def read_reference(session: Session, settings: DriftSettings) -> DriftReference:
    """Resolve ``drift.reference`` and the embedder, and read the reference's features."""
    reference = resolve_reference(session, settings.reference)
    embedder = settings.embedder or latest_embedder(session)
    class_names = {c.id: c.name for c in session.scalars(select(Category))}
    budget = VectorBudget(
        settings.max_vectors, settings.chunk_rows, settings.sample_seed, settings.max_values
    )
    features = read_features(session, reference, FAMILIES, class_names, embedder, budget)
    return DriftReference(reference, embedder, class_names, features, budget)


def check_window(
    session: Session,
    settings: DriftSettings,
    reference: DriftReference,
    window: str,
    span: tuple[datetime, datetime],
    report: DriftReport,
) -> list[StoredCheck] | None:
    """Run every check of one window ``[start, end)``; None when it has too few images.

    The window's size is appended to ``report.windows``; a skipped window counts in
    ``report.skipped_windows`` and skipped checks in ``report.skipped_checks``.
    """
    start, end = span
    pop = Population(label=window, start=start, end=end)
    n_images = count_images(session, pop)
    info = {"window": window, "start": start.isoformat(), "end": end.isoformat()}
    report.windows.append({**info, "n_images": n_images})
    if n_images < settings.min_samples:
        report.skipped_windows += 1
        return None
    current = read_features(
        session,
        pop,
        FAMILIES,
        reference.class_names,
        reference.embedder,
        reference.budget,
        against=reference.features,
    )
    return feature_checks(
        settings,
        reference.features,
        current,
        reference.population.label,
        window,
        span,
        report.skipped_checks,
        reference.embedder,
    )


def store_checks(
    sessions: sessionmaker[Session],
    checks: Sequence[StoredCheck],
    computed_at: datetime,
    run_id: int | None,
) -> None:
    """Upsert ``checks`` in one transaction (a window's rows land together or not at all)."""
    if checks:
        with sessions.begin() as session:
            _upsert(session, [_row(c, computed_at, run_id) for c in checks])


def newest_stored_end(
    session: Session, reference: str, window: str, before: datetime
) -> datetime | None:
    """Return the newest stored ``window_end`` of ``window`` at or before ``before``."""
    row = DriftResultRow
    value = session.scalar(
        select(func.max(row.window_end)).where(
            row.reference == reference, row.window == window, row.window_end <= before
        )
    )
    return None if value is None else value.astimezone(UTC)


def catch_up_spans(
    newest_stored: datetime | None, latest_end: datetime, length: timedelta
) -> list[tuple[datetime, datetime]]:
    """Return the windows a scheduled run owes, oldest first: the missed ones and the latest.

    Windows after the newest stored one, up to the latest complete window; with nothing
    stored yet, only the latest (history is the job of ``segmon drift --from --to``).

    Examples
    --------
    >>> h = timedelta(hours=1)
    >>> end = datetime(2026, 11, 23, 12, tzinfo=UTC)
    >>> [e.hour for _, e in catch_up_spans(end - 3 * h, end, h)]
    [10, 11, 12]
    >>> [e.hour for _, e in catch_up_spans(end, end, h)], len(catch_up_spans(None, end, h))
    ([12], 1)
    """
    if newest_stored is None or newest_stored >= latest_end:
        return [(latest_end - length, latest_end)]
    spans = []
    end = latest_end
    while end > newest_stored:
        spans.append((end - length, end))
        end -= length
    return spans[::-1]


def run_drift(
    sessions: sessionmaker[Session],
    settings: DriftSettings,
    clock: Clock,
    *,
    run_id: int | None = None,
    access: ImageAccess | None = None,
    executor: Executor | None = None,
) -> DriftReport:
    """Run every drift check for the current windows and upsert the results.

    For each window length the run owes the latest complete window and, after downtime,
    the windows missed since the newest stored one (:func:`catch_up_spans`), oldest
    first. At most ``drift.catch_up_windows`` windows with enough images are computed
    per length and run; the rest (``report.windows_behind``) are left to the next run,
    which starts where this one stopped. Each window is stored in its own transaction.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        The ``drift:`` section.
    clock
        ``now`` decides the windows; it also stamps ``computed_at``.
    run_id
        Job run that produced the rows, if known.
    access
        Byte and pixel caps of the image reader: a sample whose image is beyond them
        (or no longer a regular file) is quarantined, not a failure of the job.
    executor
        Where the missing image properties are computed (None: in this process).

    Returns
    -------
    DriftReport
        Stored checks, windows with their sizes, skipped windows and checks by reason.
    """
    report = DriftReport()
    report.properties = fill_image_properties(sessions, clock, access, executor=executor)
    now = clock.now()
    with sessions() as session:
        reference = read_reference(session, settings)
        report.reference = reference.population.label
        report.embedder = reference.embedder
        for window in settings.windows:
            length = parse_duration(window)
            latest = aligned_window(now, length)
            newest = newest_stored_end(session, reference.population.label, window, latest[1])
            spans = catch_up_spans(newest, latest[1], length)
            computed = 0
            for i, span in enumerate(spans):
                if computed >= settings.catch_up_windows:
                    report.windows_behind += len(spans) - i
                    break
                checks = check_window(session, settings, reference, window, span, report)
                if checks is None:
                    continue
                computed += 1
                report.checks.extend(checks)
                store_checks(sessions, checks, clock.now(), run_id)
    return report
