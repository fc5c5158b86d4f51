"""Multiwindow, multi-burn-rate alert policy (SRE workbook, chapter 5, table 5-8).

A burn rate is ``error_ratio / (1 - objective)``; since the error ratio is at most 1, it
never exceeds ``1 / (1 - objective)`` (:func:`max_burn_rate`). A tier whose factor is at
least that can never fire: with an objective of 0.9 the workbook's 14.4x page needs an
error ratio of 1.44. :func:`resolve_tiers` checks every tier of an SLO against its
objective and, as the SLO's ``unreachable_tiers`` says, refuses it (``error``, the
default), lowers its factor to :data:`CAP_FRACTION` of the maximum (``cap``) or leaves
it out (``drop``), recording what it changed. :func:`evaluate_tiers` is the alert
logic the generated rules express in PromQL; the promtool tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from monitor.errors import ConfigError
from monitor.slo.duration import parse_duration

__all__ = [
    "CAP_FRACTION",
    "DEFAULT_POLICY",
    "AlertPolicy",
    "BurnRateAlert",
    "BurnRateCondition",
    "ResolvedPolicy",
    "Severity",
    "TierAdjustment",
    "TierVerdict",
    "UnreachableTierError",
    "UnreachableTiers",
    "evaluate_tiers",
    "max_burn_rate",
    "resolve_tiers",
]

Severity = Literal["page", "ticket"]
UnreachableTiers = Literal["error", "cap", "drop"]
"""What to do with a tier whose factor the SLO's burn rate can never exceed."""

#: ``cap`` lowers an unreachable factor to this fraction of the maximum burn rate: it
#: then fires when at least 90 % of the events in both of its windows are bad.
CAP_FRACTION: Final = 0.9


@dataclass(frozen=True)
class BurnRateCondition:
    """Burn rate above ``factor`` over both ``long_window`` and ``short_window``.

    Examples
    --------
    >>> BurnRateCondition("1h", "5m", 14.4).windows
    ('1h', '5m')
    """

    long_window: str
    short_window: str
    factor: float

    def __post_init__(self) -> None:
        if parse_duration(self.short_window) >= parse_duration(self.long_window):
            raise ConfigError(
                f"short window {self.short_window!r} is not shorter than {self.long_window!r}"
            )
        if not self.factor > 0:
            raise ConfigError(f"burn-rate factor {self.factor!r} must be positive")

    @property
    def windows(self) -> tuple[str, str]:
        """The long and the short window."""
        return (self.long_window, self.short_window)


@dataclass(frozen=True)
class BurnRateAlert:
    """An alert of one severity that fires when any of its conditions holds."""

    severity: Severity
    conditions: tuple[BurnRateCondition, ...]


@dataclass(frozen=True)
class AlertPolicy:
    """The page and ticket alerts generated for every SLO.

    Examples
    --------
    >>> [(c.long_window, c.short_window, c.factor) for c in DEFAULT_POLICY.page.conditions]
    [('1h', '5m', 14.4), ('6h', '30m', 6.0)]
    """

    page: BurnRateAlert
    ticket: BurnRateAlert

    @property
    def alerts(self) -> tuple[BurnRateAlert, BurnRateAlert]:
        """Page first, then ticket."""
        return (self.page, self.ticket)


#: 2 % of a 30-day budget in 1 h or 5 % in 6 h pages; 10 % in 1 d or 10 % in 3 d opens a ticket.
DEFAULT_POLICY: Final = AlertPolicy(
    page=BurnRateAlert(
        "page", (BurnRateCondition("1h", "5m", 14.4), BurnRateCondition("6h", "30m", 6.0))
    ),
    ticket=BurnRateAlert(
        "ticket", (BurnRateCondition("1d", "2h", 3.0), BurnRateCondition("3d", "6h", 1.0))
    ),
)


def max_burn_rate(objective: float) -> float:
    """Return the highest burn rate an SLO can reach (every event bad): ``1 / (1 - objective)``.

    Examples
    --------
    >>> round(max_burn_rate(0.9), 9), round(max_burn_rate(0.99), 9)
    (10.0, 100.0)
    """
    if not 0.0 < objective < 1.0:
        raise ConfigError(f"objective {objective!r} is not strictly between 0 and 1")
    return 1.0 / (1.0 - objective)


def _fmt(value: float) -> str:
    return format(value, ".4g")


class UnreachableTierError(ConfigError):
    """A burn-rate tier whose factor the SLO's burn rate can never exceed.

    The SLO, the tier and the numbers travel as attributes as well as in the message.
    """

    def __init__(
        self, slo: str, severity: Severity, condition: BurnRateCondition, max_burn: float
    ) -> None:
        self.slo = slo
        self.severity: Severity = severity
        self.condition = condition
        self.max_burn = max_burn
        objective = 1.0 - 1.0 / max_burn
        super().__init__(
            f"SLO {slo!r}: the {severity} tier {condition.factor:g}x over "
            f"{condition.long_window} and {condition.short_window} can never fire: at "
            f"objective {objective:.6g} the burn rate is at most {_fmt(max_burn)} "
            f"(every event bad); raise the objective above {1 - 1 / condition.factor:.6g}, "
            f"disable the tier's severity ({severity}: false), or set unreachable_tiers: "
            f"cap (factor becomes {_fmt(CAP_FRACTION * max_burn)}) or drop"
        )


@dataclass(frozen=True)
class TierAdjustment:
    """A tier :func:`resolve_tiers` capped or dropped because it could never fire.

    Examples
    --------
    >>> TierAdjustment("page", "1h", "5m", 14.4, 10.0, 9.0).describe()
    'page tier 1h/5m capped from 14.4x to 9x (0.9 of the maximum burn rate 10)'
    >>> TierAdjustment("page", "1h", "5m", 14.4, 10.0, None).describe()
    'page tier 1h/5m (14.4x) dropped: the burn rate is at most 10'
    """

    severity: Severity
    long_window: str
    short_window: str
    factor: float
    max_burn: float
    new_factor: float | None
    """The capped factor; ``None`` when the tier was dropped."""

    def describe(self) -> str:
        """One line saying what was changed and why."""
        tier = f"{self.severity} tier {self.long_window}/{self.short_window}"
        if self.new_factor is None:
            return (
                f"{tier} ({self.factor:g}x) dropped: the burn rate is at most {_fmt(self.max_burn)}"
            )
        return (
            f"{tier} capped from {self.factor:g}x to {_fmt(self.new_factor)}x "
            f"({CAP_FRACTION:g} of the maximum burn rate {_fmt(self.max_burn)})"
        )


@dataclass(frozen=True)
class ResolvedPolicy:
    """The alerts generated for one SLO: enabled severities, tiers that can fire.

    Attributes
    ----------
    alerts
        Page and/or ticket alerts, each with at least one tier; a severity whose every
        tier was dropped is absent.
    adjustments
        The tiers that were capped or dropped.
    max_burn
        ``1 / (1 - objective)``.
    """

    alerts: tuple[BurnRateAlert, ...]
    adjustments: tuple[TierAdjustment, ...]
    max_burn: float

    def adjustments_of(self, severity: Severity) -> tuple[TierAdjustment, ...]:
        """Return the adjustments of one severity's tiers."""
        return tuple(a for a in self.adjustments if a.severity == severity)


def resolve_tiers(
    policy: AlertPolicy,
    *,
    slo: str,
    objective: float,
    severities: Iterable[Severity],
    unreachable: UnreachableTiers = "error",
) -> ResolvedPolicy:
    """Check every tier of the enabled severities against the SLO's maximum burn rate.

    Parameters
    ----------
    policy
        The page and ticket tiers.
    slo
        The SLO's name (for messages).
    objective
        Its objective; the maximum burn rate is ``1 / (1 - objective)``.
    severities
        The severities the SLO generates (``page`` and/or ``ticket``).
    unreachable
        ``error`` refuses a tier whose factor is at least the maximum burn rate;
        ``cap`` lowers it to :data:`CAP_FRACTION` of the maximum; ``drop`` leaves it out.

    Returns
    -------
    ResolvedPolicy
        The alerts with tiers that can fire, and what was changed.

    Raises
    ------
    UnreachableTierError
        With ``unreachable="error"``, for the first tier that can never fire.

    Examples
    --------
    >>> r = resolve_tiers(DEFAULT_POLICY, slo="q", objective=0.9, severities=["page"],
    ...                   unreachable="cap")
    >>> [(c.long_window, round(c.factor, 9)) for c in r.alerts[0].conditions]
    [('1h', 9.0), ('6h', 6.0)]
    >>> resolve_tiers(DEFAULT_POLICY, slo="q", objective=0.9, severities=["page"])
    Traceback (most recent call last):
    ...
    monitor.slo.policy.UnreachableTierError: SLO 'q': the page tier 14.4x over 1h and 5m can never fire: at objective 0.9 the burn rate is at most 10 (every event bad); ...
    """
    top = max_burn_rate(objective)
    wanted = set(severities)
    alerts: list[BurnRateAlert] = []
    changes: list[TierAdjustment] = []
    for alert in policy.alerts:
        if alert.severity not in wanted:
            continue
        kept: list[BurnRateCondition] = []
        for cond in alert.conditions:
            if cond.factor < top:
                kept.append(cond)
                continue
            if unreachable == "error":
                raise UnreachableTierError(slo, alert.severity, cond, top)
            new = float(f"{CAP_FRACTION * top:.12g}") if unreachable == "cap" else None
            changes.append(
                TierAdjustment(
                    alert.severity, cond.long_window, cond.short_window, cond.factor, top, new
                )
            )
            if new is not None:
                kept.append(BurnRateCondition(cond.long_window, cond.short_window, new))
        if kept:
            alerts.append(BurnRateAlert(alert.severity, tuple(kept)))
    return ResolvedPolicy(tuple(alerts), tuple(changes), top)


@dataclass(frozen=True)
class TierVerdict:
    """Whether one tier fires: its burn rates and events over both windows.

    Attributes
    ----------
    severity, long_window, short_window, factor
        The tier.
    long_burn, short_burn
        The (guarded) burn rates over the two windows.
    long_events, short_events
        The events in the two windows.
    min_events
        The SLO's per-window guard.
    fires
        Burn rate above ``factor`` over both windows, each holding at least
        ``min_events`` events.
    """

    severity: Severity
    long_window: str
    short_window: str
    factor: float
    long_burn: float
    short_burn: float
    long_events: float
    short_events: float
    min_events: int
    fires: bool

    def describe(self) -> str:
        """One line: the tier, both burn rates against the factor, the verdict."""

        def side(window: str, burn: float, events: float) -> str:
            op = ">" if burn > self.factor else "<="
            guard = "" if events >= self.min_events else f", under {self.min_events} events"
            return f"{window} {burn:.4g} {op} {self.factor:.4g} ({events:g} events{guard})"

        verdict = "FIRES" if self.fires else "quiet"
        return (
            f"{self.severity} {self.long_window}/{self.short_window}: {verdict}: "
            f"{side(self.long_window, self.long_burn, self.long_events)}; "
            f"{side(self.short_window, self.short_burn, self.short_events)}"
        )


def evaluate_tiers(
    alerts: Iterable[BurnRateAlert],
    burn: Mapping[str, float],
    events: Mapping[str, float],
    min_events: int,
) -> tuple[TierVerdict, ...]:
    """Evaluate every tier as the generated alerting rule does.

    A tier fires when the burn rate is strictly above its factor over both of its
    windows and each window holds at least ``min_events`` events (the rule's
    ``segmon_slo_burn_rate > factor and on() segmon_slo_events >= min_events``); an
    alert fires when any of its tiers does. Missing windows count as burn 0, no events.

    Examples
    --------
    >>> burn = {"1h": 15.0, "5m": 20.0, "6h": 5.0, "30m": 9.0}
    >>> events = dict.fromkeys(burn, 100)
    >>> [(v.long_window, v.fires) for v in evaluate_tiers([DEFAULT_POLICY.page], burn, events, 20)]
    [('1h', True), ('6h', False)]
    """
    out: list[TierVerdict] = []
    for alert in alerts:
        for cond in alert.conditions:
            lb, sb = burn.get(cond.long_window, 0.0), burn.get(cond.short_window, 0.0)
            le, se = events.get(cond.long_window, 0.0), events.get(cond.short_window, 0.0)
            fires = lb > cond.factor and sb > cond.factor and min(le, se) >= min_events
            out.append(
                TierVerdict(
                    alert.severity,
                    cond.long_window,
                    cond.short_window,
                    cond.factor,
                    lb,
                    sb,
                    le,
                    se,
                    min_events,
                    fires,
                )
            )
    return tuple(out)
