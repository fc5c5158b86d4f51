"""Deterministic YAML output for generated files (rules, tests, configs)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import yaml

__all__ = ["dump_yaml"]


class _Dumper(yaml.SafeDumper):
    """Safe dumper that writes multi-line strings as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _str_enum(dumper: yaml.SafeDumper, value: StrEnum) -> yaml.ScalarNode:
    return _str(dumper, str(value))


_Dumper.add_representer(str, _str)
_Dumper.add_multi_representer(StrEnum, _str_enum)  # JobName and friends, as their value


def dump_yaml(document: Any, header: str = "") -> str:
    r"""Serialise ``document`` as YAML in a stable layout.

    Parameters
    ----------
    document
        Plain data: dicts (key order kept), lists, strings (string enums as their
        value), numbers, booleans.
    header
        Comment lines written first (each prefixed with ``# ``).

    Returns
    -------
    str
        The YAML text, ending in a newline.

    Examples
    --------
    >>> print(dump_yaml({"expr": "a\n/ b", "n": 1}, header="generated"), end="")
    # generated
    expr: |-
      a
      / b
    n: 1
    """
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return head + body
