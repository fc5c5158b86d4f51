"""Multiwindow, multi-burn-rate alert policy (SRE workbook, chapter 5, table 5-8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from monitor.errors import ConfigError
from monitor.slo.duration import parse_duration

__all__ = ["DEFAULT_POLICY", "AlertPolicy", "BurnRateCondition", "BurnRateAlert", "Severity"]

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
