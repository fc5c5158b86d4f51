"""Quality over a past period: golden requests evaluated per capture window.

``segmon evaluate --holdout NAME --from T1 --to T2 [--window 1d]`` runs
:func:`evaluate_windows`. Golden requests are production samples whose image is a
holdout image (:func:`monitor.quality.job.golden_predictions`); the ones captured in
each aligned window ``[end - L, end)`` inside the period are scored against the holdout
and stored as one ``quality_results`` row per model version and window, with
``prediction_source`` ``production:START/END`` and ``computed_at`` = the window's end,
so the quality over time reads as the windows it covers (and the holdout quality SLO
counts each window's events at its end). Windows without golden requests store nothing;
a window already stored (same holdout, source and IoU threshold) is skipped, so a rerun
or a resumed run adds nothing twice. Labelled production samples have no capture-time
quality of their own yet: only golden requests give quality per window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, check_range
from monitor.errors import InvalidInputError
from monitor.quality.job import (
    EvaluateReport,
    golden_predictions,
    golden_source,
    load_holdout,
    score_predictions,
    store_report,
)
from monitor.slo.duration import parse_duration
from monitor.slo.history import history_steps
from monitor.storage.schema import QualityResult

__all__ = ["WindowedEvaluation", "evaluate_windows", "quality_windows"]


@dataclass
class WindowedEvaluation:
    """What one look back over quality did."""

    holdout: str
    window: str
    evaluated: EvaluateReport
    windows: int = 0
    already_stored: int = 0
    without_golden: int = 0
    per_window: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Return counts for the job-run row and ``--json``."""
        return {
            "holdout": self.holdout,
            "window": self.window,
            "windows": self.windows,
            "already_stored_windows": self.already_stored,
            "windows_without_golden_requests": self.without_golden,
            "results": self.per_window,
        }


def quality_windows(
    start: datetime, end: datetime, length: timedelta, max_windows: int
) -> list[tuple[datetime, datetime]]:
    """Return the aligned windows of ``length`` lying wholly in ``[start, end]``.

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 23, 12, tzinfo=UTC)
    >>> [(s.day, e.day) for s, e in quality_windows(t, t + timedelta(days=3), timedelta(days=1), 10)]
    [(24, 25), (25, 26)]
    """
    check_range(start, end)
    spans = [(e - length, e) for e in history_steps(start, end, length) if e - length >= start]
    if len(spans) > max_windows:
        raise InvalidInputError(
            f"{start.isoformat()} to {end.isoformat()} holds {len(spans)} windows of "
            f"{length}, more than the cap of {max_windows}; raise it with --max-windows"
        )
    return spans


def _stored(session: Session, dataset_id: int, source: str, iou_threshold: float) -> bool:
    found = session.scalar(
        select(QualityResult.id)
        .where(
            QualityResult.dataset_id == dataset_id,
            QualityResult.prediction_source == source,
            QualityResult.iou_threshold.between(iou_threshold - 1e-9, iou_threshold + 1e-9),
        )
        .limit(1)
    )
    return found is not None


def evaluate_windows(
    sessions: sessionmaker[Session],
    holdout_name: str,
    clock: Clock,
    start: datetime,
    end: datetime,
    *,
    window: str = "1d",
    iou_threshold: float = 0.5,
    max_windows: int = 2000,
    run_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WindowedEvaluation:
    """Evaluate the golden requests of every ``window`` inside ``[start, end]`` and store them.

    Parameters
    ----------
    sessions
        Session factory.
    holdout_name
        An imported holdout.
    clock
        The service's clock; each result is stamped with its window's end instead.
    start, end
        The period.
    window
        Window length (a duration such as ``1d``).
    iou_threshold
        Matching threshold.
    max_windows
        Refuse a period with more windows.
    run_id
        The job run that writes the results.
    progress
        Called with ``(done, total)`` after each window.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise InvalidInputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    spans = quality_windows(start, end, parse_duration(window), max_windows)
    out = WindowedEvaluation(holdout_name, window, EvaluateReport(holdout_name))
    out.windows = len(spans)
    with sessions() as session:
        holdout = load_holdout(session, holdout_name)
    for done, span in enumerate(spans, start=1):
        source = golden_source(span)
        with sessions() as session:
            if _stored(session, holdout.dataset_id, source, iou_threshold):
                out.already_stored += 1
                sets = []
            else:
                sets = golden_predictions(session, holdout, captured=span)
                out.without_golden += not sets
        for preds in sets:
            report = score_predictions(holdout, preds, iou_threshold)
            with sessions.begin() as session:
                result = store_report(
                    session, holdout, preds, report, clock, run_id=run_id, computed_at=span[1]
                )
                out.evaluated.results.append((result.id, preds, report))
            out.per_window.append(
                {
                    "window_start": span[0].isoformat(),
                    "window_end": span[1].isoformat(),
                    "model_version": preds.model_version,
                    "images": len(preds.image_ids),
                    "ap": report.coco.ap,
                    "mean_iou": report.overall.mean_iou,
                    "recall": report.overall.recall,
                }
            )
        if progress is not None:
            progress(done, len(spans))
    return out
