"""Multiwindow, multi-burn-rate alert policy (SRE workbook, chapter 5, table 5-8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from monitor.errors import ConfigError
from monitor.slo.duration import parse_duration

__all__ = [
    "DEFAULT_POLICY",
    "AlertPolicy",
    "BurnRateAlert",
    "BurnRateCondition",
    "Severity",
    "firing_alerts",
]

Severity = Literal["page", "ticket"]


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


def firing_alerts(
    policy: AlertPolicy,
    burn: Mapping[str, float],
    events: Mapping[str, float],
    *,
    min_events: int,
    enabled: tuple[Severity, ...] = ("page", "ticket"),
) -> list[BurnRateAlert]:
    """Return the alerts the generated rules fire for these window values.

    A condition holds when the burn rate is above its factor over both its long and its
    short window, each window holding at least ``min_events`` events; an alert fires
    when any of its conditions holds. This is the expression of
    :func:`monitor.prometheus.rules.burn_alert_rule`, and the promtool tests and
    ``segmon slo --from --to`` both decide with it.

    Parameters
    ----------
    policy
        The page and ticket alerts.
    burn, events
        Unguarded burn rate and events per window label.
    min_events
        The SLO's minimum-events guard.
    enabled
        Severities the SLO generates (its ``page`` / ``ticket`` switches).

    Examples
    --------
    >>> burn = {"1h": 15.0, "5m": 20.0, "6h": 2.0, "30m": 2.0, "1d": 4.0, "2h": 5.0, "3d": 1.0}
    >>> events = dict.fromkeys(burn, 100)
    >>> [a.severity for a in firing_alerts(DEFAULT_POLICY, burn, events, min_events=20)]
    ['page', 'ticket']
    >>> [a.severity for a in firing_alerts(DEFAULT_POLICY, burn, {**events, "5m": 3},
    ...                                     min_events=20)]
    ['ticket']
    """

    def holds(window: str, factor: float) -> bool:
        return burn.get(window, 0.0) > factor and events.get(window, 0.0) >= min_events

    return [
        alert
        for alert in policy.alerts
        if alert.severity in enabled
        and any(
            holds(c.long_window, c.factor) and holds(c.short_window, c.factor)
            for c in alert.conditions
        )
    ]
