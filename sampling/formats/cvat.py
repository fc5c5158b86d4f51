"""CVAT for images 1.1: XML with ``<mask>`` pre-annotations, and its returned XML.

A CVAT mask is stored inside its **inclusive** bounding box: ``left``/``top`` are the
box's first column and row, ``width``/``height`` its size (``right - left + 1``), and
``rle`` is a comma-separated list of run lengths over the box's pixels in row-major
order, alternating background and foreground and **starting with a background run**
(0 when the box's first pixel is inside): CVAT's own worked example, ``[0, 0, 0, 1] ->
3, 1`` and ``[1, 1, 0, 0] -> 0, 2, 2``. CVAT writes the runs separated by ``", "``;
:func:`build_cvat_xml` does the same.

:func:`build_cvat_xml` writes one ``<image>`` per queue item (``id`` 0, 1, ... in order,
``name`` = the file name) holding one ``<mask source="auto">`` per production instance;
the labels are declared in ``<meta>`` with type ``any`` so annotators may draw masks or
polygons. CVAT numbers images by its own frame order, so the queue item travels by the
image **name**: :func:`parse_cvat_xml` returns ``item_id=None`` and the queue matches on
``file_name``. It reads ``<mask>`` and ``<polygon>`` shapes; other shapes (boxes,
polylines, points, tags...) are listed in ``unsupported``. Parsing refuses DTDs and
entities (defusedxml).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, indent, tostring

import numpy as np
from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

from sampling.formats.mask_codec import (
    image_mask,
    image_size,
    mask_to_rle,
    polygons_to_rle,
)
from sampling.formats.records import (
    BinaryMask,
    ExportImage,
    FormatError,
    ReturnedAnnotation,
    ReturnedImage,
)

__all__ = ["build_cvat_xml", "cvat_mask_decode", "cvat_mask_encode", "parse_cvat_xml"]

_SHAPES = ("box", "polyline", "points", "cuboid", "ellipse", "skeleton", "tag")


def cvat_mask_encode(mask: BinaryMask) -> tuple[list[int], int, int, int, int]:
    """Encode a mask as CVAT RLE inside its inclusive bounding box.

    Returns ``(rle, left, top, width, height)``. An empty mask has no box and cannot be
    written in CVAT: it raises :class:`FormatError`.

    Examples
    --------
    >>> mask = np.zeros((4, 6), dtype=np.uint8)
    >>> mask[1, 2:4] = 1
    >>> mask[2, 3] = 1
    >>> cvat_mask_encode(mask)
    ([0, 2, 1, 1], 2, 1, 2, 2)
    """
    inside = np.asarray(mask) != 0
    if inside.ndim != 2:
        raise FormatError("cvat", "mask", f"must be 2-D, got shape {inside.shape}")
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        raise FormatError("cvat", "mask", "is empty: CVAT cannot hold a mask with no pixel")
    top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    flat = inside[top : bottom + 1, left : right + 1].ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size])))
    rle: list[int] = ([0] if flat[0] else []) + runs.tolist()
    return rle, left, top, right - left + 1, bottom - top + 1


def cvat_mask_decode(
    rle: Sequence[int],
    left: int,
    top: int,
    width: int,
    height: int,
    image_height: int,
    image_width: int,
) -> BinaryMask:
    """Decode a CVAT box RLE into the full-image 0/1 mask.

    Examples
    --------
    >>> cvat_mask_decode([0, 2, 1, 1], 2, 1, 2, 2, 4, 6).tolist()
    [[0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    """
    return _decode(rle, left, top, width, height, image_height, image_width, where="cvat")


def _decode(
    rle: Sequence[int],
    left: int,
    top: int,
    width: int,
    height: int,
    image_height: int,
    image_width: int,
    *,
    where: str,
) -> BinaryMask:
    h, w = image_size(image_height, image_width, where=where, field="image size")
    box = (left, top, width, height)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        raise FormatError(where, "left/top/width/height", f"must be integers, got {box}")
    if left < 0 or top < 0 or width <= 0 or height <= 0:
        raise FormatError(where, "left/top/width/height", f"bad box {box}")
    if left + width > w or top + height > h:
        raise FormatError(where, "left/top/width/height", f"box {box} leaves the {w} x {h} image")
    runs = np.asarray(rle, dtype=np.int64) if len(rle) else np.zeros(0, dtype=np.int64)
    if runs.size == 0 or int(runs.min()) < 0:
        raise FormatError(where, "rle", "must be non-negative run lengths")
    if int(runs.sum()) != width * height:
        raise FormatError(
            where, "rle", f"runs cover {int(runs.sum())} pixels, the box has {width * height}"
        )
    values = (np.arange(runs.size) % 2).astype(np.uint8)
    out = np.zeros((h, w), dtype=np.uint8)
    out[top : top + height, left : left + width] = np.repeat(values, runs).reshape(height, width)
    return out


def build_cvat_xml(images: Sequence[ExportImage], category_names: Sequence[str]) -> str:
    """Build a CVAT for images 1.1 XML with the production masks as pre-annotations.

    Empty masks are left out (CVAT cannot hold them).

    Examples
    --------
    >>> from sampling.formats.records import ExportImage, ExportMask
    >>> rle = {"size": [2, 2], "counts": "031"}
    >>> image = ExportImage(7, "a.jpg", 2, 2, 0.9, (ExportMask(1, "disc", rle, 0.8),), "v1")
    >>> xml = build_cvat_xml([image], ["disc"])
    >>> print(xml[xml.index("<image"):xml.index("</image>")].strip())
    <image id="0" name="a.jpg" width="2" height="2">
        <mask label="disc" source="auto" occluded="0" rle="0, 3, 1" left="0" top="0" width="2" height="2" z_order="0" />
    """
    names = list(category_names)
    if len(set(names)) != len(names) or any(not isinstance(n, str) or not n for n in names):
        raise FormatError("cvat", "category_names", f"need unique non-empty names: {names}")
    root = Element("annotations")
    _text(root, "version", "1.1")
    meta = _child(root, "meta")
    task = _child(meta, "task")
    _text(task, "name", "segmon annotation queue")
    _text(task, "size", str(len(images)))
    _text(task, "mode", "annotation")
    labels = _child(task, "labels")
    for name in names:
        label = _child(labels, "label")
        _text(label, "name", name)
        _text(label, "type", "any")
        _child(label, "attributes")
    known = set(names)
    for index, image in enumerate(images):
        where = f"item {image.item_id}"
        node = _child(
            root,
            "image",
            id=str(index),
            name=image.file_name,
            width=str(image.width),
            height=str(image.height),
        )
        for k, instance in enumerate(image.masks):
            if instance.category_name not in known:
                raise FormatError(
                    where,
                    f"masks[{k}].category_name",
                    f"{instance.category_name!r} is not one of {names}",
                )
            mask = image_mask(instance.rle, image.height, image.width, where=where, k=k)
            if not mask.any():
                continue
            runs, left, top, width, height = cvat_mask_encode(mask)
            _child(
                node,
                "mask",
                label=instance.category_name,
                source="auto",
                occluded="0",
                rle=", ".join(map(str, runs)),
                left=str(left),
                top=str(top),
                width=str(width),
                height=str(height),
                z_order="0",
            )
    indent(root, space="  ")
    body = tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def parse_cvat_xml(text: str) -> list[ReturnedImage]:
    """Read a CVAT for images 1.1 XML (masks and polygons) into returned images.

    Examples
    --------
    >>> xml = ('<annotations><version>1.1</version><image id="0" name="a.jpg" width="3" '
    ...        'height="2"><mask label="disc" source="manual" occluded="0" rle="1, 2, 3" '
    ...        'left="0" top="0" width="3" height="2" z_order="0"/>'
    ...        '<box label="disc" xtl="0" ytl="0" xbr="1" ybr="1"/></image></annotations>')
    >>> image = parse_cvat_xml(xml)[0]
    >>> image.file_name, image.annotations[0].category_name, image.unsupported
    ('a.jpg', 'disc', ('box disc',))
    >>> from sampling.formats.mask_codec import rle_to_mask
    >>> rle_to_mask(image.annotations[0].rle, where="a.jpg", field="rle").tolist()
    [[0, 1, 1], [0, 0, 0]]
    """
    try:
        root = SafeElementTree.fromstring(text, forbid_dtd=True)
    except (SafeElementTree.ParseError, DefusedXmlException) as error:
        raise FormatError("cvat", "xml", f"not readable XML: {error}") from error
    if root.tag != "annotations":
        raise FormatError("cvat", "xml", f"root is <{root.tag}>, expected <annotations>")
    version = root.findtext("version")
    if version is not None and version.strip() != "1.1":
        raise FormatError("cvat", "version", f"{version.strip()!r}; expected '1.1'")
    if root.find("track") is not None:
        raise FormatError(
            "cvat", "track", "CVAT for video is not supported; export as CVAT for images 1.1"
        )
    return [_parse_image(node) for node in root.iter("image")]


def _parse_image(node: Element) -> ReturnedImage:
    name = node.get("name")
    where = f"image {name!r}" if name else f"image id={node.get('id')!r}"
    if not name:
        raise FormatError(where, "name", "missing")
    width = _int(node, "width", where)
    height = _int(node, "height", where)
    image_size(height, width, where=where, field="width/height")
    instances: list[ReturnedAnnotation] = []
    unsupported: list[str] = []
    for k, shape in enumerate(node):
        label = shape.get("label")
        shape_where = f"{where} {shape.tag} #{k}"
        if shape.tag in ("mask", "polygon") and not label:
            raise FormatError(shape_where, "label", "missing")
        if shape.tag == "mask":
            runs = _runs(shape.get("rle"), shape_where)
            mask = _decode(
                runs,
                _int(shape, "left", shape_where),
                _int(shape, "top", shape_where),
                _int(shape, "width", shape_where),
                _int(shape, "height", shape_where),
                height,
                width,
                where=shape_where,
            )
            instances.append(ReturnedAnnotation(str(label), mask_to_rle(mask)))
        elif shape.tag == "polygon":
            points = _points(shape.get("points"), shape_where)
            rle = polygons_to_rle([points], height, width, where=shape_where, field="points")
            instances.append(ReturnedAnnotation(str(label), rle))
        elif shape.tag in _SHAPES:
            unsupported.append(f"{shape.tag} {label}" if label else shape.tag)
    return ReturnedImage(
        None, name, width, height, tuple(instances), None, False, tuple(unsupported)
    )


def _int(node: Element, field: str, where: str) -> int:
    raw = node.get(field)
    try:
        return int(str(raw).strip())
    except ValueError:
        raise FormatError(where, field, f"must be an integer, got {raw!r}") from None


def _runs(raw: str | None, where: str) -> list[int]:
    if not raw:
        raise FormatError(where, "rle", "missing")
    try:
        return [int(part) for part in raw.split(",")]
    except ValueError:
        raise FormatError(where, "rle", f"must be comma-separated integers: {raw[:40]!r}") from None


def _points(raw: str | None, where: str) -> list[float]:
    if not raw:
        raise FormatError(where, "points", "missing")
    flat: list[float] = []
    try:
        for pair in raw.split(";"):
            x, y = pair.split(",")
            flat.extend((float(x), float(y)))
    except ValueError:
        raise FormatError(where, "points", f"must be 'x1,y1;x2,y2;...': {raw[:40]!r}") from None
    return flat


def _child(parent: Element, tag: str, **attributes: str) -> Element:
    node = Element(tag, attributes)
    parent.append(node)
    return node


def _text(parent: Element, tag: str, text: str) -> None:
    _child(parent, tag).text = text
