"""An SLO looked back on: burn rates as of each step of a past period, and its alerts.

Pure arithmetic, like :mod:`monitor.slo.burn`: :func:`slo_history` evaluates
:func:`monitor.slo.burn.slo_status` at every step end of a period and asks
:func:`monitor.slo.policy.evaluate_tiers` -- the logic of the generated alerting rules --
which alerts would have fired then. Consecutive steps with the same alert firing make
one :class:`AlertEpisode` (when it started, when it stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy.typing as npt

from monitor.errors import InvalidInputError
from monitor.slo.burn import SLOStatus, Times, slo_status
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy, Severity, evaluate_tiers

if TYPE_CHECKING:
    from monitor.slo.spec import SLOSpec

__all__ = ["AlertEpisode", "HistoryPoint", "SLOHistory", "history_steps", "slo_history"]


@dataclass(frozen=True)
class HistoryPoint:
    """The SLO as of one instant, and the alerts firing then."""

    status: SLOStatus
    firing: tuple[Severity, ...]


@dataclass(frozen=True)
class AlertEpisode:
    """An alert that would have fired from ``started`` until ``ended`` (None: still on)."""

    severity: Severity
    started: datetime
    ended: datetime | None


@dataclass(frozen=True)
class SLOHistory:
    """One SLO over a period: a point per step and the alert episodes."""

    slo: str
    points: tuple[HistoryPoint, ...]
    episodes: tuple[AlertEpisode, ...]


def history_steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Return the instants of a look back: multiples of ``step`` in ``(start, end]``.

    Examples
    --------
    >>> t = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    >>> [s.hour for s in history_steps(t, t + timedelta(hours=3), timedelta(hours=1))]
    [1, 2, 3]
    """
    if step <= timedelta(0):
        raise InvalidInputError(f"step {step} must be positive")
    seconds = int(step.total_seconds())
    first = int(start.timestamp()) // seconds * seconds + seconds
    last = int(end.timestamp())
    return [datetime.fromtimestamp(t, UTC) for t in range(first, last + 1, seconds)]


def slo_history(
    spec: SLOSpec,
    event_times: Times,
    steps: list[datetime],
    *,
    bad: npt.ArrayLike,
    total: npt.ArrayLike | None = None,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> SLOHistory:
    """Evaluate ``spec`` at every step and say which alerts would have fired.

    Parameters
    ----------
    spec
        The SLO (objective, period, ``min_events``, ``page`` / ``ticket`` switches).
    event_times, bad, total
        As for :func:`monitor.slo.burn.burn_rates`: every event of the period looked
        back on, plus the SLO's longest window before it.
    steps
        The instants, ascending (:func:`history_steps`).
    policy
        Burn-rate factors and windows of the page and ticket alerts.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.slo.spec import QualitySLI, SLOSpec
    >>> spec = SLOSpec(name="q", objective=0.99, sli=QualitySLI(), min_events=5)
    >>> t0 = datetime(2026, 11, 23, tzinfo=UTC)
    >>> times = t0.timestamp() + np.arange(0, 86400, 60.0)     # an event a minute
    >>> bad = (times >= t0.timestamp() + 6 * 3600) & (times < t0.timestamp() + 9 * 3600)
    >>> steps = history_steps(t0, t0 + timedelta(days=1), timedelta(hours=1))
    >>> h = slo_history(spec, times, steps, bad=bad)
    >>> [(e.severity, e.started.hour, e.ended.hour if e.ended else None) for e in h.episodes]
    [('page', 7, 10), ('ticket', 7, 15)]
    """
    alerts = spec.alert_policy(policy).alerts  # the tiers the generated rules hold
    enabled = tuple(a.severity for a in alerts)
    points: list[HistoryPoint] = []
    open_since: dict[Severity, datetime] = {}
    episodes: list[AlertEpisode] = []
    for at in steps:
        status = slo_status(spec, event_times, at, bad=bad, total=total)
        burn = {w.window: w.raw_burn_rate for w in status.windows}
        events = {w.window: float(w.events) for w in status.windows}
        verdicts = evaluate_tiers(alerts, burn, events, spec.min_events)
        fired = {v.severity for v in verdicts if v.fires}
        firing = tuple(s for s in enabled if s in fired)
        points.append(HistoryPoint(status, firing))
        for severity in enabled:
            if severity in firing and severity not in open_since:
                open_since[severity] = at
            elif severity not in firing and severity in open_since:
                episodes.append(AlertEpisode(severity, open_since.pop(severity), at))
    episodes.extend(AlertEpisode(s, since, None) for s, since in open_since.items())
    episodes.sort(key=lambda e: (e.started, e.severity))
    return SLOHistory(spec.name, tuple(points), tuple(episodes))
