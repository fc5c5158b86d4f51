"""Durations: Prometheus-style strings both ways, and the SLO windows of a period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.errors import ConfigError
from monitor.slo.duration import format_duration, parse_duration, slo_windows


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert format_duration(timedelta(hours=48)) == "2d"
    assert format_duration(timedelta(seconds=61)) == "61s"
    with pytest.raises(ConfigError, match="'1.5h'"):
        parse_duration("1.5h")
    assert slo_windows(timedelta(days=3)) == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    assert slo_windows(timedelta(days=7))[-1] == "7d"
