"""Numbers for people: every command's human output formats its numbers here.

``--json`` prints stored values at full precision; the human output rounds them, so a
burn rate of ``19.999999999999982`` reads ``20`` and a budget of ``0.16473317865429216``
reads ``0.1647``. Containers (the counts dictionaries some commands print) are formatted
element by element.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["SIGNIFICANT", "num", "percent"]

#: Significant digits of a number printed for people.
SIGNIFICANT = 4


def num(value: object, digits: int = SIGNIFICANT, *, places: int | None = None) -> str:
    """Format a number for people: ``digits`` significant digits, or ``places`` decimals.

    Integers print whole; ``None`` prints ``-``; non-finite floats print ``nan`` / ``inf``;
    numbers of ``digits`` or more integer digits print without decimals (never in
    exponent form); mappings and sequences are formatted element by element; anything
    else prints as ``str``.

    Examples
    --------
    >>> num(19.999999999999982), num(0.16473317865429216), num(-0.5162907268170425)
    ('20', '0.1647', '-0.5163')
    >>> num(123456.789), num(6.666666666666667), num(3), num(None), num(float("nan"))
    ('123457', '6.667', '3', '-', 'nan')
    >>> num(0.8234041395123505, places=3), num(2.0e-7)
    ('0.823', '2e-07')
    >>> num({"ratio": 0.123456789, "names": ["a", 1.23456789], "why": "ok"})
    "{'ratio': 0.1235, 'names': ['a', 1.235], 'why': 'ok'}"
    """
    if value is None:
        return "-"
    if isinstance(value, bool | int | str):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if places is not None:
            return f"{value:.{places}f}"
        if abs(value) >= 10 ** (digits - 1):
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k!r}: {_item(v, digits, places)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_item(v, digits, places) for v in value) + "]"
    try:
        return num(float(value), digits, places=places)  # type: ignore[arg-type]  # numpy scalars, Decimal
    except (TypeError, ValueError):
        return str(value)


def _item(value: object, digits: int, places: int | None) -> str:
    return repr(value) if isinstance(value, str) else num(value, digits, places=places)


def percent(value: float | None, places: int = 2) -> str:
    """Format a ratio as a percentage with ``places`` decimals.

    Examples
    --------
    >>> percent(-0.5162907268170425), percent(None)
    ('-51.63%', '-')
    """
    return "-" if value is None else f"{value:.{places}%}"
