"""Read a file of returned labels into :class:`~sampling.formats.records.ReturnedImage` records.

The parsing itself is the pure codecs' (:mod:`sampling.formats`): COCO instances JSON
(``parse_coco``: compressed or uncompressed RLE and polygons), a Label Studio JSON export
(``parse_export``: brush and polygon results; cancelled annotations become skipped
images) and CVAT for images 1.1 XML (``parse_cvat_xml``: ``<mask>`` and ``<polygon>``).
This module only reads the file and names it in every error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from monitor.errors import InvalidInputError, NotFoundError
from sampling.formats.coco_json import parse_coco
from sampling.formats.cvat import parse_cvat_xml
from sampling.formats.labelstudio import parse_export
from sampling.formats.records import FormatError, ReturnedImage

ReturnFormat = Literal["coco", "labelstudio", "cvat"]
"""The formats ``segmon queue import`` reads."""

RETURN_FORMATS: tuple[str, ...] = get_args(ReturnFormat)


def parse_returned(text: str, fmt: ReturnFormat, *, name: str = "document") -> list[ReturnedImage]:
    """Parse the text of a returned-labels document of format ``fmt``.

    Parameters
    ----------
    text
        The document (JSON for ``coco`` and ``labelstudio``, XML for ``cvat``).
    fmt
        Its format.
    name
        How errors name the document (its path).

    Returns
    -------
    list of ReturnedImage
        One record per image or task.

    Raises
    ------
    InvalidInputError
        If the document is not valid JSON / XML of that format; the message names the
        document, the task or image, and the field.

    Examples
    --------
    >>> doc = {"images": [{"id": 1, "file_name": "a.png", "width": 2, "height": 2,
    ...                    "segmon_item_id": 7}],
    ...        "annotations": [], "categories": [{"id": 1, "name": "disc"}]}
    >>> [(r.item_id, r.file_name, r.annotations) for r in parse_returned(json.dumps(doc), "coco")]
    [(7, 'a.png', ())]
    >>> parse_returned("{", "coco", name="x.json")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: x.json is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)
    """
    if fmt not in RETURN_FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}; use one of {', '.join(RETURN_FORMATS)}")
    try:
        if fmt == "cvat":
            return parse_cvat_xml(text)
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{name} is not valid JSON: {exc}") from None
        if fmt == "coco":
            if not isinstance(document, dict):
                raise InvalidInputError(f"{name} is not a COCO instances document (an object)")
            return parse_coco(document)
        if not isinstance(document, list):
            raise InvalidInputError(f"{name} is not a Label Studio JSON export (a list of tasks)")
        return parse_export(document)
    except FormatError as exc:
        raise InvalidInputError(f"{name}: {exc}") from None


def read_returned(path: Path, fmt: ReturnFormat) -> list[ReturnedImage]:
    """Read and parse the returned-labels file at ``path`` (see :func:`parse_returned`).

    Raises
    ------
    NotFoundError
        If the file does not exist.
    InvalidInputError
        If it cannot be read or parsed; the message names the file.
    """
    if not path.is_file():
        raise NotFoundError(f"labels file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read labels file {str(path)!r}: {exc}") from None
    return parse_returned(text, fmt, name=repr(str(path)))
