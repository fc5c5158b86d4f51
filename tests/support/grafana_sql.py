"""Grafana's PostgreSQL macros and variables, expanded as Grafana expands them.

After Grafana's own sources (``pkg/tsdb/grafana-postgresql-datasource/macros.go`` and
the template service's ``regex`` format): ``$__timeFilter(c)`` becomes
``c BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC), ``$__timeGroup(c, 1h)``
``floor(extract(epoch from c)/3600)*3600``, ``$__timeGroupAlias`` the same
``AS "time"``, ``$__timeFrom()`` / ``$__timeTo()`` the quoted bounds; ``$__interval`` is
replaced first by the panel's interval; ``${name:regex}`` is the variable's custom
"All" value (``.*``) or its values escaped and joined into ``(a|b)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

ALL: tuple[str, ...] = ()
"""A variable set to "All"."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(interval: str) -> int:
    match = re.fullmatch(r"'?(\d+)([smhd])'?", interval.strip())
    if match is None:
        raise ValueError(f"not a Grafana interval: {interval!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _regex(values: Sequence[str]) -> str:
    if not values:
        return ".*"
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def expand(
    sql: str,
    start: datetime,
    end: datetime,
    variables: Mapping[str, Sequence[str]],
    interval: str = "1h",
) -> str:
    """Return ``sql`` as Grafana sends it to PostgreSQL for this time range and variables."""
    sql = sql.replace("$__interval", interval)

    def var(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2)
        if fmt != "regex":
            raise ValueError(f"format {fmt!r} of ${{{name}}} is not emulated")
        return _regex(variables[name])

    sql = re.sub(r"\$\{(\w+):(\w+)\}", var, sql)
    bounds = f"'{_rfc3339(start)}' AND '{_rfc3339(end)}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN {bounds}", sql)

    def group(match: re.Match[str], alias: bool) -> str:
        column, interval_arg = (a.strip() for a in match.group(1).rsplit(",", 1))
        n = _seconds(interval_arg)
        out = f"floor(extract(epoch from {column})/{n})*{n}"
        return out + ' AS "time"' if alias else out

    sql = re.sub(r"\$__timeGroupAlias\(([^)]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^)]+)\)", lambda m: group(m, False), sql)
    sql = sql.replace("$__timeFrom()", f"'{_rfc3339(start)}'")
    sql = sql.replace("$__timeTo()", f"'{_rfc3339(end)}'")
    if "$__" in sql or "${" in sql:
        raise ValueError(f"unexpanded macro or variable left in: {sql}")
    return sql
