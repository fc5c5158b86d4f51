"""The canary job: candidate model versions against the baseline, verdicts stored per signal.

Each run compares the samples of the last ``canary.window`` (ending at the run's time,
rounded down to the minute) with :func:`monitor.drift.compare.compare_versions`:

- the baseline is ``canary.baseline``, or (unset) the version with the most accepted
  samples in the window (ties: the first name);
- the candidates are ``canary.candidates``, or (empty) every other version with at
  least ``drift.min_samples`` samples in the window.

A configured version that has no sample at all is skipped and named in the report.
One ``canary_results`` row per (baseline, candidate, window end, signal) is upserted,
so a rerun of the same run replaces its rows; the exporter reads the newest row per
(baseline, candidate, signal) (:mod:`monitor.prometheus.families`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.drift.compare import CanaryComparison, compare_versions
from monitor.slo.duration import parse_duration
from monitor.storage.schema import CanaryResultRow, ModelVersion, Sample, SampleStatus
from monitor.storage.upsert import upsert_rows

KEY_COLUMNS = ("baseline", "candidate", "window_end", "signal")


@dataclass
class CanaryReport:
    """What one canary run compared and stored."""

    window_start: datetime
    window_end: datetime
    baseline: str | None = None
    samples: dict[str, int] = field(default_factory=dict)
    """Accepted samples per model version in the window."""
    comparisons: list[CanaryComparison] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Configured versions left out, with the reason."""

    def counts(self) -> dict[str, Any]:
        """Return the counts for the job-run row (verdicts per candidate and signal)."""
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "baseline": self.baseline,
            "samples": dict(sorted(self.samples.items())),
            "candidates": {
                c.candidate: {s.signal: s.verdict for s in c.signals} for c in self.comparisons
            },
            "worse": sorted(
                f"{c.candidate}:{s.signal}"
                for c in self.comparisons
                for s in c.signals
                if s.verdict == "worse"
            ),
            "skipped": dict(sorted(self.skipped.items())),
        }


def samples_per_version(session: Session, span: tuple[datetime, datetime]) -> dict[str, int]:
    """Return the number of accepted samples each model version served in ``span``."""
    stmt = (
        select(ModelVersion.name, func.count(Sample.id))
        .join(Sample, Sample.model_version_id == ModelVersion.id)
        .where(
            Sample.status == SampleStatus.OK,
            Sample.captured_at >= span[0],
            Sample.captured_at < span[1],
        )
        .group_by(ModelVersion.name)
    )
    return {name: int(n) for name, n in session.execute(stmt)}


def choose_versions(
    samples: dict[str, int],
    baseline: str | None,
    candidates: Sequence[str],
    min_samples: int,
) -> tuple[str | None, list[str]]:
    """Return the baseline and the candidates to compare with it.

    Examples
    --------
    >>> choose_versions({"v1": 900, "v2": 80, "v3": 5}, None, (), 30)
    ('v1', ['v2'])
    >>> choose_versions({"v1": 900, "v2": 80}, "v2", ("v1", "v3"), 30)
    ('v2', ['v1', 'v3'])
    >>> choose_versions({}, None, (), 30)
    (None, [])
    """
    if baseline is None:
        if not samples:
            return None, []
        baseline = min(samples, key=lambda name: (-samples[name], name))
    if candidates:
        return baseline, [c for c in candidates if c != baseline]
    chosen = [v for v, n in sorted(samples.items()) if v != baseline and n >= min_samples]
    return baseline, chosen


def _rows(
    comparison: CanaryComparison, computed_at: datetime, run_id: int | None
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "computed_at": computed_at,
            "baseline": comparison.baseline,
            "candidate": comparison.candidate,
            "window_start": comparison.start,
            "window_end": comparison.end,
            "signal": s.signal,
            "verdict": s.verdict,
            "checks": s.checks,
            "significant": s.significant,
            "min_p_value": s.min_p_value,
            "baseline_mean": s.baseline_mean,
            "candidate_mean": s.candidate_mean,
            "n_baseline": comparison.n_baseline,
            "n_candidate": comparison.n_candidate,
        }
        for s in comparison.signals
    ]


def run_canary(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    run_id: int | None = None,
) -> CanaryReport:
    """Compare each candidate with the baseline over the last window and store the verdicts.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        All settings: ``canary`` chooses the versions and the window, ``drift`` the
        detectors, ``alpha`` and ``min_samples``, ``queue.uncertainty_threshold`` and
        ``shadow.min_iou`` two of the signals.
    clock
        ``now`` ends the window; it also stamps ``computed_at``.
    run_id
        Job run that produced the rows, if known.

    Returns
    -------
    CanaryReport
        The baseline, the comparisons stored, the versions skipped.
    """
    now = clock.now().replace(second=0, microsecond=0)
    span = (now - parse_duration(settings.canary.window), now)
    report = CanaryReport(span[0], span[1])
    with sessions() as session:
        report.samples = samples_per_version(session, span)
        known = set(session.scalars(select(ModelVersion.name)))
        baseline, candidates = choose_versions(
            report.samples,
            settings.canary.baseline,
            settings.canary.candidates,
            settings.drift.min_samples,
        )
        if baseline is not None and baseline not in known:
            report.skipped[baseline] = "baseline: no such model version"
            return report
        report.baseline = baseline
        for candidate in candidates:
            if candidate not in known:
                report.skipped[candidate] = "candidate: no such model version"
                continue
            report.comparisons.append(
                compare_versions(
                    session,
                    settings.drift,
                    baseline or "",
                    candidate,
                    span,
                    uncertainty_threshold=settings.queue.uncertainty_threshold,
                    min_iou=settings.shadow.min_iou,
                )
            )
    rows = [r for c in report.comparisons for r in _rows(c, clock.now(), run_id)]
    if rows:
        with sessions.begin() as session:
            upsert_rows(session, CanaryResultRow, rows, KEY_COLUMNS)
    return report
