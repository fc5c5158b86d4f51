"""Class names and input size from the metadata exporters write into model files.

* Ultralytics writes ``names`` (``str`` of a ``{index: name}`` dict) and ``imgsz``
  (``[h, w]``) into ONNX ``metadata_props``, and the same as JSON in the TorchScript
  extra file ``config.txt``;
* a ``classes`` entry (ONNX) or ``classes.json`` extra file (TorchScript) holding a JSON
  list of names is read too.

Values are parsed with :func:`json.loads` or :func:`ast.literal_eval` (literals only,
never code).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from monitor.errors import InvalidInputError


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _flat(metadata: Mapping[str, str]) -> dict[str, Any]:
    """Metadata entries, with Ultralytics' TorchScript ``config.txt`` JSON merged in."""
    values: dict[str, Any] = {k: _parse(v) for k, v in metadata.items()}
    config = values.pop("config.txt", None)
    if isinstance(config, dict):
        values = {**config, **values}
    if "classes.json" in values:
        values["classes"] = values.pop("classes.json")
    return values


def class_names(metadata: Mapping[str, str], where: str = "model") -> tuple[str, ...] | None:
    """Return the class names a model file carries (by label index), or None.

    Raises
    ------
    InvalidInputError
        For a ``names`` dict whose indices are not ``0 .. n-1``.

    Examples
    --------
    >>> class_names({"names": "{0: 'person', 1: 'bicycle'}"})
    ('person', 'bicycle')
    >>> class_names({"classes": '["disc", "box"]'})
    ('disc', 'box')
    >>> class_names({"config.txt": '{"names": {"0": "person"}, "imgsz": [640, 640]}'})
    ('person',)
    >>> class_names({"author": "me"}) is None
    True
    """
    values = _flat(metadata)
    for key in ("classes", "names"):
        found = values.get(key)
        if isinstance(found, list | tuple) and found and all(isinstance(n, str) for n in found):
            return tuple(found)
        if isinstance(found, dict) and found:
            try:
                by_index = {int(k): str(v) for k, v in found.items()}
            except (TypeError, ValueError):
                continue
            if sorted(by_index) != list(range(len(by_index))):
                raise InvalidInputError(
                    f"{where}: class names in its metadata have indices {sorted(by_index)[:10]}, "
                    "not 0..n-1; list them in `classes`"
                )
            return tuple(by_index[i] for i in range(len(by_index)))
    return None


def input_size(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """Return ``(h, w)`` from an ``imgsz`` entry (an int or ``[h, w]``), or None.

    Examples
    --------
    >>> input_size({"imgsz": "[640, 480]"}), input_size({"imgsz": "320"}), input_size({})
    ((640, 480), (320, 320), None)
    """
    found = _flat(metadata).get("imgsz")
    if isinstance(found, int) and found > 0:
        return found, found
    if (
        isinstance(found, list | tuple)
        and len(found) == 2
        and all(isinstance(v, int) and v > 0 for v in found)
    ):
        return int(found[0]), int(found[1])
    return None
