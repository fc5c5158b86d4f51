"""Small PromQL helpers: the metric names an expression reads, Grafana variable substitution.

Not a PromQL parser: promtool validates syntax; this only finds which series names an
expression selects, so tests can check them against :mod:`monitor.prometheus.catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["metric_names", "substitute_variables"]

_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS: Final = re.compile(r"\{[^}]*\}")
_BRACKETS: Final = re.compile(r"\[[^\]]*\]")
_LABEL_LIST: Final = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS: Final = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def metric_names(expr: str) -> frozenset[str]:
    """Return the metric names an expression selects.

    Parameters
    ----------
    expr
        A PromQL expression.

    Returns
    -------
    frozenset of str
        Names of selected series (function names, keywords, label names, durations and
        Grafana ``$variables`` are left out).

    Examples
    --------
    >>> sorted(metric_names(
    ...     'sum by (slo) (rate(http_requests_total{code=~"5.."}[5m])) / on(slo) '
    ...     "group_left max(segmon_slo_events offset 1h) > 1e3 and ALERTS"))
    ['ALERTS', 'http_requests_total', 'segmon_slo_events']
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        start, end = match.span()
        before = text[start - 1] if start > 0 else " "
        if before.isalnum() or before in "._$":
            continue  # part of a number, a duration (5m) or a Grafana variable
        token = match.group()
        if token.lower() in _KEYWORDS:
            continue
        if text[end:].lstrip().startswith("("):
            continue  # a function or aggregation call
        names.add(token)
    return frozenset(names)


def substitute_variables(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana ``$name`` / ``${name}`` variables with sample values.

    Parameters
    ----------
    expr
        A dashboard query.
    values
        Value per variable name; unknown variables raise ``KeyError``.

    Returns
    -------
    str
        The query with every variable replaced.

    Examples
    --------
    >>> substitute_variables('rate(x{v=~"$model_version"}[$__rate_interval])',
    ...                      {"model_version": "m1", "__rate_interval": "5m"})
    'rate(x{v=~"m1"}[5m])'
    """

    def _one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no sample value for dashboard variable {name!r} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(_one, expr)
