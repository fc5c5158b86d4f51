"""Event-time error ratios, burn rates and error budget over the SLO windows.

Pure arithmetic over event records; the SLO job feeds it rows from the database and the
metrics collectors export the result as ``segmon_slo_*`` gauges.

Definitions, per window ``w`` ending at ``now``:

* an event belongs to ``w`` when its **event time** (the sample's capture time) lies in
  ``(now - w, now]``; a late-arriving sample counts in the windows of its capture time,
  and when arrival times are given, records that had not arrived by ``now`` are left out;
* ``error_ratio = bad / events`` (``0.0`` when the window holds no event: never NaN);
* ``raw_burn_rate = error_ratio / (1 - objective)``: 1.0 spends the budget exactly over
  the period;
* ``guarded`` is true when ``events < min_events``; the alerting ``burn_rate`` is then
  ``0.0`` while ``error_ratio`` and ``raw_burn_rate`` keep the raw values;
* ``error_budget_remaining = 1 - bad / (allowed bad)`` over the period, with
  ``allowed bad = (1 - objective) * events``. It is ``1.0`` with no events, ``0.0``
  when the budget is exactly spent and **negative** when it is overspent (``-1.0``
  means twice the allowed bad events). It is never guarded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from detectors._typing import Float64Array, Int64Array
from monitor.errors import InvalidInputError, NotFoundError
from monitor.slo.duration import parse_duration, slo_windows
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy, TierVerdict, evaluate_tiers

if TYPE_CHECKING:
    from monitor.slo.spec import SLOSpec

Times = npt.ArrayLike | Sequence[datetime]
"""Event or arrival times: ``datetime`` (naive means UTC), ``datetime64`` or epoch seconds."""

__all__ = [
    "BurnRate",
    "SLOStatus",
    "alert_verdicts",
    "burn_rates",
    "slo_status",
    "window_seconds",
]


@dataclass(frozen=True)
class BurnRate:
    """Error ratio and burn rate of one SLO over one event-time window.

    Attributes
    ----------
    window
        Window label, e.g. ``"1h"`` (a Prometheus duration).
    window_seconds
        Window length in seconds.
    events, bad_events
        Events whose event time lies in the window, and how many of them were bad.
    error_ratio
        ``bad_events / events``; ``0.0`` for an empty window.
    raw_burn_rate
        ``error_ratio / (1 - objective)``, unguarded.
    burn_rate
        ``raw_burn_rate``, or ``0.0`` when ``guarded``: the value alerts use.
    guarded
        True when ``events < min_events``.
    """

    window: str
    window_seconds: float
    events: int
    bad_events: int
    error_ratio: float
    raw_burn_rate: float
    burn_rate: float
    guarded: bool


@dataclass(frozen=True)
class SLOStatus:
    """All windows of one SLO at one instant, plus the error budget left over the period.

    Attributes
    ----------
    slo
        SLO name.
    objective
        Target fraction of good events.
    period
        The period's window label, e.g. ``"30d"``.
    now
        The evaluation instant (UTC).
    windows
        One :class:`BurnRate` per window, shortest first; the last is the period.
    error_budget_remaining
        ``1 - bad / ((1 - objective) * events)`` over the period; may be negative.
    """

    slo: str
    objective: float
    period: str
    now: datetime
    windows: tuple[BurnRate, ...]
    error_budget_remaining: float

    def window(self, label: str) -> BurnRate:
        """Return the window called ``label``.

        Raises
        ------
        NotFoundError
            If the status has no such window.
        """
        for item in self.windows:
            if item.window == label:
                return item
        raise NotFoundError(f"no window {label!r} in SLO {self.slo!r}")


def _seconds(values: Times, what: str) -> Float64Array:
    """Convert datetimes, ``datetime64`` or epoch seconds to a float64 epoch-seconds array."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    elif arr.dtype.kind == "O":
        out = np.array([_epoch(v, what) for v in arr.ravel()], dtype=np.float64)
    elif arr.dtype.kind in "iuf":
        out = arr.astype(np.float64)
    else:
        raise InvalidInputError(f"{what} must be datetimes or epoch seconds, got dtype {arr.dtype}")
    if out.ndim != 1:
        raise InvalidInputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(out)):
        bad = out[~np.isfinite(out)][0]
        raise InvalidInputError(f"{what} holds a non-finite time {bad!r}")
    return out


def _epoch(value: object, what: str) -> float:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.timestamp()
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    raise InvalidInputError(f"{what} holds {value!r}, which is neither a datetime nor a number")


def _counts(values: npt.ArrayLike | None, n: int, what: str) -> Int64Array:
    if values is None:
        return np.ones(n, dtype=np.int64)
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise InvalidInputError(f"{what} has shape {arr.shape}, expected ({n},)")
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu" and not (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    ):
        raise InvalidInputError(f"{what} must hold booleans or whole counts, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if np.any(out < 0):
        raise InvalidInputError(f"{what} holds a negative count {int(out[out < 0][0])}")
    return out


def burn_rates(
    event_times: Times,
    now: datetime | float,
    *,
    bad: npt.ArrayLike,
    objective: float,
    windows: Sequence[str],
    total: npt.ArrayLike | None = None,
    arrival_times: Times | None = None,
    min_events: int = 20,
) -> tuple[BurnRate, ...]:
    """Compute event-time error ratios and burn rates for several windows at once.

    Parameters
    ----------
    event_times
        Event time of each record (capture time): ``datetime`` (naive means UTC),
        ``datetime64`` or epoch seconds.
    now
        End of every window (inclusive): an aware ``datetime`` or epoch seconds.
    bad
        Per record, whether it was bad (booleans) or how many of its events were bad.
    objective
        Target fraction of good events, in ``(0, 1)``.
    windows
        Window labels (Prometheus durations such as ``"5m"`` or ``"30d"``).
    total
        Per record, how many events it holds (default: one each); ``bad <= total``.
    arrival_times
        When each record arrived; records that arrived after ``now`` are left out.
    min_events
        Windows with fewer events are ``guarded`` (alerting burn rate ``0.0``).

    Returns
    -------
    tuple of BurnRate
        One per window, in the order given.

    Raises
    ------
    InvalidInputError
        On mismatched lengths, negative or non-whole counts, ``bad > total`` or
        non-finite times; :class:`~monitor.errors.ConfigError` on a bad window label.

    Examples
    --------
    >>> t = [0.0, 3000.0, 3500.0, 3590.0]  # epoch seconds; t=0 lies outside (0, 3600]
    >>> r = burn_rates(t, 3600.0, bad=[True, False, True, False], objective=0.9,
    ...                windows=["5m", "1h"], min_events=3)
    >>> [(b.window, b.events, b.bad_events, b.error_ratio, round(b.burn_rate, 6), b.guarded)
    ...  for b in r]
    [('5m', 2, 1, 0.5, 0.0, True), ('1h', 3, 1, 0.333333..., 3.333333, False)]
    """
    if not 0.0 < objective < 1.0:
        raise InvalidInputError(f"objective {objective!r} is not strictly between 0 and 1")
    if min_events < 0:
        raise InvalidInputError(f"min_events {min_events!r} is negative")
    times = _seconds(event_times, "event_times")
    n = times.shape[0]
    bad_counts = _counts(bad, n, "bad")
    totals = _counts(total, n, "total")
    if np.any(bad_counts > totals):
        i = int(np.flatnonzero(bad_counts > totals)[0])
        raise InvalidInputError(
            f"record {i} has bad={int(bad_counts[i])} greater than total={int(totals[i])}"
        )
    end = _epoch(now, "now")
    if arrival_times is not None:
        arrived = _seconds(arrival_times, "arrival_times")
        if arrived.shape != (n,):
            raise InvalidInputError(f"arrival_times has shape {arrived.shape}, expected ({n},)")
        keep = arrived <= end
        times, bad_counts, totals = times[keep], bad_counts[keep], totals[keep]

    if times.size > 1 and not np.all(times[1:] >= times[:-1]):
        order = np.argsort(times, kind="stable")
        times, bad_counts, totals = times[order], bad_counts[order], totals[order]
    cum_bad = np.concatenate(([0], np.cumsum(bad_counts)))
    cum_total = np.concatenate(([0], np.cumsum(totals)))

    seconds = np.array([parse_duration(w).total_seconds() for w in windows], dtype=np.float64)
    hi = np.searchsorted(times, end, side="right")
    lo = np.searchsorted(times, end - seconds, side="right")
    budget = 1.0 - objective
    out: list[BurnRate] = []
    for label, length, start in zip(windows, seconds, lo, strict=True):
        events = int(cum_total[hi] - cum_total[start])
        bad_events = int(cum_bad[hi] - cum_bad[start])
        ratio = bad_events / events if events > 0 else 0.0
        raw = ratio / budget
        guarded = events < min_events
        out.append(
            BurnRate(
                window=label,
                window_seconds=float(length),
                events=events,
                bad_events=bad_events,
                error_ratio=ratio,
                raw_burn_rate=raw,
                burn_rate=0.0 if guarded else raw,
                guarded=guarded,
            )
        )
    return tuple(out)


def slo_status(
    spec: SLOSpec,
    event_times: Times,
    now: datetime | float,
    *,
    bad: npt.ArrayLike,
    total: npt.ArrayLike | None = None,
    arrival_times: Times | None = None,
) -> SLOStatus:
    """Compute every window of ``spec`` (alert windows plus its period) at ``now``.

    Parameters
    ----------
    spec
        The SLO; its objective, period and ``min_events`` are used.
    event_times, bad, total, arrival_times
        As for :func:`burn_rates`.
    now
        The evaluation instant: an aware ``datetime`` (naive means UTC) or epoch seconds.

    Returns
    -------
    SLOStatus
        The windows and the error budget remaining over the period.

    Examples
    --------
    >>> from monitor.slo.spec import QualitySLI, SLOSpec
    >>> spec = SLOSpec(name="q", objective=0.9, period="30d", sli=QualitySLI(), min_events=5,
    ...                unreachable_tiers="cap")
    >>> rng = np.random.default_rng(0)
    >>> t = np.sort(rng.uniform(0, 30 * 86400, 1000))
    >>> bad = rng.random(1000) < 0.15                  # 15 % bad vs. 10 % allowed
    >>> st = slo_status(spec, t, 30 * 86400.0, bad=bad)
    >>> p = st.window("30d")
    >>> p.events, p.bad_events, round(st.error_budget_remaining, 2)
    (1000, 178, -0.78)
    """
    windows = slo_windows(spec.period)
    rates = burn_rates(
        event_times,
        now,
        bad=bad,
        objective=spec.objective,
        windows=windows,
        total=total,
        arrival_times=arrival_times,
        min_events=spec.min_events,
    )
    period = rates[-1]
    remaining = 1.0 - period.raw_burn_rate
    end = now if isinstance(now, datetime) else datetime.fromtimestamp(float(now), UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return SLOStatus(
        slo=spec.name,
        objective=spec.objective,
        period=spec.period_label,
        now=end.astimezone(UTC),
        windows=rates,
        error_budget_remaining=remaining,
    )


def window_seconds(label: str) -> float:
    """Length of a window label in seconds.

    Examples
    --------
    >>> window_seconds("6h")
    21600.0
    """
    return parse_duration(label).total_seconds()


def alert_verdicts(
    spec: SLOSpec, status: SLOStatus, policy: AlertPolicy = DEFAULT_POLICY
) -> tuple[TierVerdict, ...]:
    """Evaluate the SLO's burn-rate alerts over its windows, as the generated rules do.

    The tiers are the SLO's :meth:`~monitor.slo.spec.SLOSpec.alert_policy` (enabled
    severities, unreachable tiers handled); each reads the guarded ``burn_rate`` and the
    ``events`` of its two windows, which is what ``segmon_slo_burn_rate`` and
    ``segmon_slo_events`` export and the rules compare.

    Examples
    --------
    >>> from monitor.slo.spec import QualitySLI, SLOSpec
    >>> spec = SLOSpec(name="q", objective=0.95, period="30d", sli=QualitySLI(), min_events=5)
    >>> t = np.arange(0.0, 3600.0, 10.0)                # one event every 10 s for an hour
    >>> st = slo_status(spec, t, 3600.0, bad=np.ones(t.size, bool))  # all bad: an outage
    >>> [(v.severity, v.long_window, v.fires) for v in alert_verdicts(spec, st)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('page', '1h', True), ('page', '6h', True), ('ticket', '1d', True), ('ticket', '3d', True)]
    """
    burn = {w.window: w.burn_rate for w in status.windows}
    events = {w.window: float(w.events) for w in status.windows}
    return evaluate_tiers(spec.alert_policy(policy).alerts, burn, events, spec.min_events)
