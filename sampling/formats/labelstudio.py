"""Label Studio: tasks with brush pre-annotations, the labelling config, and its JSON export.

**Brush RLE** is Label Studio's own mask encoding, not COCO's: the mask is flattened
row-major into RGBA bytes (4 per pixel, 255 inside, 0 outside; the alpha byte is the
mask) and packed by the run-length scheme of thi.ng's ``rle-pack`` that Label Studio's
editor uses: a bit stream of a 32-bit value count, a 5-bit word size minus one, four
4-bit run-length field sizes minus one, then records ``1 | size-index(2) | n-1 | value``
(a run of ``n`` equal values) or ``0 | size-index(2) | n-1 | n values`` (literal values),
zero-padded to whole bytes and written as a list of byte values. :func:`brush_encode`
writes exactly the bytes label-studio-sdk's ``brush.mask2rle(mask * 255)`` writes (word
size 8, run-length field sizes 3, 4, 8 and 16 bits); :func:`brush_decode` reads any word
and field sizes, as the editor may choose its own.

**Tasks** (:func:`build_tasks`) carry ``data.image`` (the file name or URL),
``data.segmon_item_id`` (so labels come back to their queue item) and the image size,
and one prediction: ``{"model_version", "score": priority, "result": [...]}`` with one
``brushlabels`` result per production instance. :func:`labeling_config` writes the
matching ``<View>`` with a ``BrushLabels`` tool (named ``from_name``) and a
``PolygonLabels`` tool (``from_name + "_polygon"``) over the same labels.

**Import** (:func:`parse_export`) reads Label Studio's JSON export (a list of tasks with
their ``annotations``): brush results and polygon results (``value.points`` in percent of
the image size). Of a task's annotations the ground-truth one is used, else the latest;
a task whose annotations were all cancelled (skipped) is returned with ``skipped=True``;
a task nobody annotated is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt

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

__all__ = [
    "brush_decode",
    "brush_decode_values",
    "brush_encode",
    "brush_encode_values",
    "build_tasks",
    "labeling_config",
    "parse_export",
]

_WORD_SIZE = 8
_RLE_SIZES = (3, 4, 8, 16)
_HEADER_BITS = 32 + 5 + 4 * 4
_LONGEST = 2**16


def brush_encode_values(values: npt.NDArray[np.uint8]) -> list[int]:
    """Pack a flat array of byte values into Label Studio brush RLE bytes.

    The same bytes as label-studio-sdk's ``brush.encode_rle(values)``: a run of 1 is
    written as a literal record, longer runs as run records in the smallest of the 3, 4
    and 8-bit length fields that holds them, longer than 256 in 16-bit records of at
    most 65,536 values each.

    Examples
    --------
    >>> values = np.array([1, 1, 1, 1, 2, 3, 5, 6, 7, 8] + [4] * 8, dtype=np.uint8)
    >>> brush_encode_values(values)
    [0, 0, 0, 18, 57, 27, 252, 96, 32, 1, 0, 6, 0, 40, 0, 192, 3, 128, 17, 56, 32]
    """
    flat = np.asarray(values, dtype=np.uint8).ravel()
    if flat.size == 0:
        raise FormatError("brush", "values", "cannot encode 0 values")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    return _encode_runs(lengths.astype(np.int64), flat[starts].astype(np.int64), flat.size)


def _encode_runs(
    lengths: npt.NDArray[np.int64], run_values: npt.NDArray[np.int64], n: int
) -> list[int]:
    """Pack runs (``lengths`` of ``run_values``, ``n`` values in all) as label-studio-sdk."""
    if n >= 2**32:
        raise FormatError("brush", "values", f"cannot encode {n} values")
    # Runs longer than 256 are split into 16-bit records of 65,536 (the last holds the rest).
    pieces = np.where(lengths > 256, (lengths - 1) // _LONGEST + 1, 1)
    record_run = np.repeat(np.arange(lengths.size), pieces)
    first = np.concatenate(([0], np.cumsum(pieces)[:-1]))
    index_in_run = np.arange(record_run.size) - np.repeat(first, pieces)
    record_len = lengths[record_run]
    is_long = record_len > 256
    last_piece = index_in_run == pieces[record_run] - 1
    count = np.where(is_long & ~last_piece, _LONGEST, record_len - index_in_run * _LONGEST)
    selector = np.select([record_len <= 8, record_len <= 16, record_len <= 256], [0, 1, 2], 3)
    size_bits = np.asarray(_RLE_SIZES, dtype=np.int64)[selector]
    flag = (record_len > 1).astype(np.int64)
    nbits = 1 + 2 + size_bits + _WORD_SIZE
    code = (
        (flag << (nbits - 1))
        | (selector << (nbits - 3))
        | ((count - 1) << _WORD_SIZE)
        | run_values[record_run]
    )
    header = (n << 21) | ((_WORD_SIZE - 1) << 16)
    for k, size in enumerate(_RLE_SIZES):
        header |= (size - 1) << (12 - 4 * k)
    total = _HEADER_BITS + int(nbits.sum())
    padded = total + 8 - total % 8  # label-studio-sdk always pads, a whole byte if aligned
    bits = np.zeros(padded, dtype=np.uint8)
    header_bits = (header >> np.arange(_HEADER_BITS - 1, -1, -1, dtype=np.int64)) & 1
    bits[:_HEADER_BITS] = header_bits
    offsets = _HEADER_BITS + np.cumsum(nbits) - nbits
    for k in range(int(nbits.max())):
        has = nbits > k
        bits[offsets[has] + k] = (code[has] >> (nbits[has] - 1 - k)) & 1
    packed: list[int] = np.packbits(bits).tolist()
    return packed


def brush_encode(mask: BinaryMask) -> list[int]:
    """Encode a ``(h, w)`` mask (nonzero = inside) as Label Studio brush RLE.

    Examples
    --------
    >>> mask = np.zeros((4, 5), dtype=np.uint8)
    >>> mask[1:3, 1:4] = 1
    >>> rle = brush_encode(mask)
    >>> len(rle), bool((brush_decode(rle, 4, 5) == mask).all())
    (17, True)
    """
    if mask.ndim != 2:
        raise FormatError("brush", "mask", f"must be 2-D, got shape {mask.shape}")
    inside = np.asarray(mask).ravel() != 0  # row-major, as the RGBA image is laid out
    if inside.size == 0:
        raise FormatError("brush", "mask", "is empty (0 pixels)")
    change = np.flatnonzero(inside[1:] != inside[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [inside.size])))
    values = np.where(inside[starts], 255, 0).astype(np.int64)
    # each pixel is 4 equal RGBA bytes, so the runs of the RGBA image are 4 times longer
    return _encode_runs(4 * lengths.astype(np.int64), values, 4 * inside.size)


def brush_decode_values(
    rle: Sequence[int], *, expected: int | None = None, where: str = "brush"
) -> npt.NDArray[np.uint8]:
    """Unpack Label Studio brush RLE bytes into the flat array of values it holds.

    Any word size up to 8 bits and any run-length field sizes are read from the header.
    With ``expected``, a header announcing another number of values is refused before
    anything is allocated.

    Examples
    --------
    >>> rle = [0, 0, 0, 18, 57, 27, 252, 96, 32, 1, 0, 6, 0, 40, 0, 192, 3, 128, 17, 56, 32]
    >>> brush_decode_values(rle).tolist()
    [1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 4, 4, 4, 4, 4, 4, 4, 4]
    """
    if isinstance(rle, str | bytes) or not isinstance(rle, Sequence):
        raise FormatError(where, "rle", "must be a list of byte values")
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in rle):
        raise FormatError(where, "rle", "must hold only integers 0..255")
    if len(rle) < 7:
        raise FormatError(where, "rle", f"{len(rle)} bytes is shorter than the header")
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    text = (bits + 48).tobytes().decode("ascii")
    end = len(text)
    num = int(text[0:32], 2)
    word = int(text[32:37], 2) + 1
    if word > 8:
        raise FormatError(where, "rle", f"word size {word} bits; masks use at most 8")
    sizes = [int(text[37 + 4 * k : 41 + 4 * k], 2) + 1 for k in range(4)]
    if expected is not None and num != expected:
        raise FormatError(where, "rle", f"holds {num} values, expected {expected}")
    if num > (8 * len(rle) // (3 + min(sizes))) * 2 ** max(sizes):  # more than it can hold
        raise FormatError(where, "rle", f"claims {num} values in {len(rle)} bytes")
    out = np.zeros(num, dtype=np.uint8)
    i, p = 0, _HEADER_BITS
    while i < num:
        if p + 3 > end:
            raise FormatError(where, "rle", f"ends after {i} of {num} values")
        is_run = text[p] == "1"
        size = sizes[int(text[p + 1 : p + 3], 2)]
        p += 3
        if p + size > end:
            raise FormatError(where, "rle", f"ends after {i} of {num} values")
        j = i + 1 + int(text[p : p + size], 2)
        p += size
        if j > num:
            raise FormatError(where, "rle", f"a run passes the end ({j} > {num} values)")
        if is_run:
            if p + word > end:
                raise FormatError(where, "rle", f"ends after {i} of {num} values")
            out[i:j] = int(text[p : p + word], 2)
            p += word
        else:
            if p + word * (j - i) > end:
                raise FormatError(where, "rle", f"ends after {i} of {num} values")
            for k in range(i, j):
                out[k] = int(text[p : p + word], 2)
                p += word
        i = j
    return out


def brush_decode(rle: Sequence[int], height: int, width: int) -> BinaryMask:
    """Decode Label Studio brush RLE into a ``(height, width)`` 0/1 mask (alpha > 0 = inside).

    Examples
    --------
    >>> mask = np.eye(3, dtype=np.uint8)
    >>> brush_decode(brush_encode(mask), 3, 3).tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    """
    values = brush_decode_values(rle, expected=height * width * 4)
    return (values.reshape(height, width, 4)[:, :, 3] > 0).astype(np.uint8)


def build_tasks(
    images: Sequence[ExportImage], *, from_name: str = "label", to_name: str = "image"
) -> list[dict[str, Any]]:
    """Label Studio tasks, one per image, with the production prediction as brush results.

    Empty masks are left out (there is nothing to correct); an image whose prediction
    has no instance still gets a prediction with no result.

    Examples
    --------
    >>> from sampling.formats.records import ExportImage, ExportMask
    >>> rle = {"size": [2, 2], "counts": "031"}
    >>> image = ExportImage(7, "a.jpg", 2, 2, 0.9, (ExportMask(1, "disc", rle, 0.8),), "v1")
    >>> task = build_tasks([image])[0]
    >>> task["data"]["segmon_item_id"], task["predictions"][0]["score"]
    (7, 0.9)
    >>> result = task["predictions"][0]["result"][0]
    >>> result["type"], result["value"]["brushlabels"], result["value"]["format"]
    ('brushlabels', ['disc'], 'rle')
    """
    tasks = []
    for image in images:
        where = f"item {image.item_id}"
        results = []
        for k, instance in enumerate(image.masks):
            mask = image_mask(instance.rle, image.height, image.width, where=where, k=k)
            if not mask.any():
                continue
            results.append(
                {
                    "id": f"segmon-{image.item_id}-{k}",
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "brushlabels",
                    "origin": "prediction",
                    "value": {
                        "format": "rle",
                        "rle": brush_encode(mask),
                        "brushlabels": [instance.category_name],
                    },
                    "original_width": image.width,
                    "original_height": image.height,
                    "image_rotation": 0,
                    **({} if instance.score is None else {"score": float(instance.score)}),
                }
            )
        tasks.append(
            {
                "data": {
                    "image": image.file_name,
                    "segmon_item_id": image.item_id,
                    "segmon_width": image.width,
                    "segmon_height": image.height,
                },
                "predictions": [
                    {
                        "model_version": image.model_version,
                        "score": float(image.priority),
                        "result": results,
                    }
                ],
            }
        )
    return tasks


def labeling_config(
    category_names: Sequence[str], *, from_name: str = "label", to_name: str = "image"
) -> str:
    """Write the labelling config for :func:`build_tasks`' tasks: brush and polygon tools.

    Examples
    --------
    >>> print(labeling_config(["disc", "a&b"]))
    <View>
      <Image name="image" value="$image" zoom="true"/>
      <BrushLabels name="label" toName="image">
        <Label value="disc"/>
        <Label value="a&amp;b"/>
      </BrushLabels>
      <PolygonLabels name="label_polygon" toName="image">
        <Label value="disc"/>
        <Label value="a&amp;b"/>
      </PolygonLabels>
    </View>
    """
    names = list(category_names)
    if not names or any(not isinstance(n, str) or not n.strip() for n in names):
        raise FormatError("labeling config", "category_names", f"need non-empty names: {names}")
    if len(set(names)) != len(names):
        raise FormatError("labeling config", "category_names", f"duplicate names: {names}")
    labels = "\n".join(f"    <Label value={quoteattr(n)}/>" for n in names)
    return (
        "<View>\n"
        f'  <Image name={quoteattr(to_name)} value="$image" zoom="true"/>\n'
        f"  <BrushLabels name={quoteattr(from_name)} toName={quoteattr(to_name)}>\n"
        f"{labels}\n"
        "  </BrushLabels>\n"
        f"  <PolygonLabels name={quoteattr(from_name + '_polygon')} "
        f"toName={quoteattr(to_name)}>\n"
        f"{labels}\n"
        "  </PolygonLabels>\n"
        "</View>"
    )


def parse_export(document: Sequence[Mapping[str, Any]]) -> list[ReturnedImage]:
    """Read a Label Studio JSON export (brush and polygon results) into returned images.

    Examples
    --------
    >>> from sampling.formats.records import ExportImage, ExportMask
    >>> rle = {"size": [2, 2], "counts": "031"}
    >>> image = ExportImage(7, "a.jpg", 2, 2, 0.9, (ExportMask(1, "disc", rle, 0.8),), "v1")
    >>> task = build_tasks([image])[0]
    >>> task["annotations"] = [{"id": 1, "completed_by": 3, "was_cancelled": False,
    ...                         "result": task["predictions"][0]["result"]}]
    >>> returned = parse_export([task])[0]
    >>> returned.item_id, returned.annotator, returned.annotations[0].rle
    (7, '3', {'size': [2, 2], 'counts': '031'})
    """
    if isinstance(document, Mapping) or not isinstance(document, Sequence):
        raise FormatError("export", "document", "must be a list of tasks (Label Studio JSON)")
    returned = []
    for index, task in enumerate(document):
        image = _parse_task(task, index)
        if image is not None:
            returned.append(image)
    return returned


def _parse_task(task: object, index: int) -> ReturnedImage | None:
    if not isinstance(task, Mapping):
        raise FormatError(f"task #{index}", "task", "must be an object")
    where = f"task {task.get('id', f'#{index}')}"
    data = task.get("data")
    if not isinstance(data, Mapping):
        raise FormatError(where, "data", "missing or not an object")
    file_name = data.get("image")
    if not isinstance(file_name, str) or not file_name:
        raise FormatError(
            where, "data.image", f"must be the image's name or URL, got {file_name!r}"
        )
    item_id = data.get("segmon_item_id")
    if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
        raise FormatError(where, "data.segmon_item_id", f"must be an integer, got {item_id!r}")
    annotations = task.get("annotations", [])
    if not isinstance(annotations, Sequence) or not all(
        isinstance(a, Mapping) for a in annotations
    ):
        raise FormatError(where, "annotations", "must be a list of objects")
    if not annotations:
        return None
    kept = [a for a in annotations if not a.get("was_cancelled", False)]
    chosen = max(kept or annotations, key=_annotation_order)
    annotator = _annotator(chosen.get("completed_by"))
    width, height = _task_size(data, where)
    if not kept:
        return ReturnedImage(item_id, file_name, width, height, (), annotator, True)
    results = chosen.get("result", [])
    if not isinstance(results, Sequence) or not all(isinstance(r, Mapping) for r in results):
        raise FormatError(where, "annotations.result", "must be a list of objects")
    instances: list[ReturnedAnnotation] = []
    unsupported: list[str] = []
    for k, result in enumerate(results):
        label = f"result {result.get('id', k)}"
        kind = str(result.get("type", "")).lower()
        if kind not in ("brushlabels", "polygonlabels"):
            unsupported.append(f"{label}: type {kind or '?'}")
            continue
        if result.get("image_rotation", 0) not in (0, None):
            unsupported.append(f"{label}: rotated image ({result.get('image_rotation')})")
            continue
        width, height = _result_size(result, width, height, f"{where} {label}")
        instances.append(_instance(result, kind, width, height, f"{where} {label}"))
    return ReturnedImage(
        item_id,
        file_name,
        width,
        height,
        tuple(instances),
        annotator,
        False,
        tuple(unsupported),
    )


def _annotation_order(annotation: Mapping[str, Any]) -> tuple[bool, str, int]:
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    ident = annotation.get("id")
    return (
        bool(annotation.get("ground_truth", False)),
        str(stamp),
        ident if isinstance(ident, int) else 0,
    )


def _annotator(completed_by: object) -> str | None:
    if isinstance(completed_by, Mapping):
        for key in ("email", "username", "id"):
            if completed_by.get(key) not in (None, ""):
                return str(completed_by[key])
        return None
    return None if completed_by is None else str(completed_by)


def _task_size(data: Mapping[str, Any], where: str) -> tuple[int, int]:
    width, height = data.get("segmon_width"), data.get("segmon_height")
    if width is None and height is None:
        return 0, 0
    for field, value in (("data.segmon_width", width), ("data.segmon_height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise FormatError(where, field, f"must be a positive integer, got {value!r}")
    image_size(height, width, where=where, field="data.segmon_height/segmon_width")
    return int(width), int(height)  # type: ignore[arg-type]  # checked above


def _result_size(result: Mapping[str, Any], width: int, height: int, where: str) -> tuple[int, int]:
    w, h = result.get("original_width"), result.get("original_height")
    for field, value in (("original_width", w), ("original_height", h)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise FormatError(where, field, f"must be a positive integer, got {value!r}")
    image_size(h, w, where=where, field="original_height/original_width")
    if width and (w, h) != (width, height):
        raise FormatError(
            where, "original_width", f"{w} x {h} differs from the task's {width} x {height}"
        )
    return int(w), int(h)  # type: ignore[arg-type]  # checked above


def _instance(
    result: Mapping[str, Any], kind: str, width: int, height: int, where: str
) -> ReturnedAnnotation:
    value = result.get("value")
    if not isinstance(value, Mapping):
        raise FormatError(where, "value", "missing or not an object")
    names = value.get(kind)
    if (
        not isinstance(names, Sequence)
        or isinstance(names, str)
        or len(names) != 1
        or not isinstance(names[0], str)
    ):
        raise FormatError(where, f"value.{kind}", f"must name exactly one label, got {names!r}")
    if kind == "brushlabels":
        if value.get("format", "rle") != "rle":
            raise FormatError(where, "value.format", f"must be 'rle', got {value.get('format')!r}")
        rle = value.get("rle", result.get("rle"))
        if rle is None:
            raise FormatError(where, "value.rle", "missing")
        values = brush_decode_values(rle, expected=height * width * 4, where=where)
        mask = (values.reshape(height, width, 4)[:, :, 3] > 0).astype(np.uint8)
        return ReturnedAnnotation(names[0], mask_to_rle(mask))
    points = value.get("points")
    if (
        not isinstance(points, Sequence)
        or isinstance(points, str)
        or not all(
            isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 for p in points
        )
    ):
        raise FormatError(where, "value.points", "must be a list of [x, y] percentages")
    flat: list[float] = []
    for x, y in points:
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            raise FormatError(where, "value.points", f"not a number: [{x!r}, {y!r}]")
        flat.extend((float(x) * width / 100.0, float(y) * height / 100.0))
    rle = polygons_to_rle([flat], height, width, where=where, field="value.points")
    return ReturnedAnnotation(names[0], rle)
