"""Prometheus-style durations (``5m``, ``6h``, ``30d``) and the SLO window set.

segmon writes windows as Prometheus duration literals so the same string is a label value
(``window="1h"``), a recording-rule suffix (``slo:sli_error:ratio_rate1h``) and a range
selector (``[1h]``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from monitor.errors import ConfigError

__all__ = ["ALERT_WINDOWS", "format_duration", "parse_duration", "slo_windows"]

_UNIT_SECONDS: Final[dict[str, int]] = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_PATTERN: Final = re.compile(r"^(?:(\d+)([smhdw]))+$")
_PART: Final = re.compile(r"(\d+)([smhdw])")

#: The fixed windows of the SRE workbook's multiwindow, multi-burn-rate table.
ALERT_WINDOWS: Final[tuple[str, ...]] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration such as ``30d``, ``6h`` or ``1h30m``.

    Parameters
    ----------
    text
        One or more ``<integer><unit>`` parts, units ``s m h d w``.

    Returns
    -------
    timedelta
        The duration; always positive.

    Raises
    ------
    ConfigError
        If ``text`` is not such a duration or is zero.

    Examples
    --------
    >>> parse_duration("30d")
    datetime.timedelta(days=30)
    >>> parse_duration("1h30m").total_seconds()
    5400.0
    >>> parse_duration("month")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: invalid duration 'month': expected e.g. '5m', '6h', '30d'
    """
    stripped = text.strip()
    if not _PATTERN.fullmatch(stripped):
        raise ConfigError(f"invalid duration {text!r}: expected e.g. '5m', '6h', '30d'")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(stripped))
    if seconds <= 0:
        raise ConfigError(f"invalid duration {text!r}: must be positive")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Write a duration as one Prometheus literal in the largest unit that divides it.

    Parameters
    ----------
    value
        A positive duration in whole seconds.

    Returns
    -------
    str
        For example ``"30d"``, ``"90m"``, ``"45s"`` (weeks are written in days).

    Raises
    ------
    ConfigError
        If ``value`` is not a positive whole number of seconds.

    Examples
    --------
    >>> from datetime import timedelta
    >>> format_duration(timedelta(days=28)), format_duration(timedelta(minutes=90))
    ('28d', '90m')
    """
    total = value.total_seconds()
    if total <= 0 or total != int(total):
        raise ConfigError(f"duration {value!r} is not a positive whole number of seconds")
    seconds = int(total)
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def slo_windows(period: timedelta) -> tuple[str, ...]:
    """Return the window labels for an SLO: the alert windows plus its period.

    Parameters
    ----------
    period
        The SLO period (the error-budget window).

    Returns
    -------
    tuple of str
        Labels ordered by length, without duplicates.

    Examples
    --------
    >>> from datetime import timedelta
    >>> slo_windows(timedelta(days=30))
    ('5m', '30m', '1h', '2h', '6h', '1d', '3d', '30d')
    """
    labels = {w: parse_duration(w) for w in ALERT_WINDOWS}
    labels.setdefault(format_duration(period), period)
    return tuple(sorted(labels, key=lambda w: labels[w]))
