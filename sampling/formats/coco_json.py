"""COCO instances JSON: the queue's images with their predictions, and returned COCO files.

:func:`build_coco` writes ``images`` (``id`` = the queue item id, also as
``segmon_item_id``, plus ``segmon_model_version`` and ``segmon_priority``),
``annotations`` (the production masks as compressed RLE with ``area``, ``bbox``,
``iscrowd: 0`` and the production ``score``; ids from 1, as pycocotools treats 0 as
"unmatched") and ``categories``. Empty masks are left out.

:func:`parse_coco` reads a returned COCO instances file: segmentations as compressed
RLE, uncompressed RLE or polygons. The item id comes from ``segmon_item_id`` only (tools
that re-save COCO renumber image ids, so ``id`` is not trusted); None otherwise, and the
queue matches on ``file_name``. Category names come from ``categories``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sampling.formats.mask_codec import (
    image_mask,
    image_size,
    mask_to_rle,
    polygons_to_rle,
    rle_to_mask,
)
from sampling.formats.records import (
    BinaryMask,
    ExportImage,
    FormatError,
    ReturnedAnnotation,
    ReturnedImage,
)

__all__ = ["build_coco", "parse_coco"]


def build_coco(
    images: Sequence[ExportImage], categories: Sequence[tuple[int, str]]
) -> dict[str, Any]:
    """Build a COCO instances document of the queue's images and production masks.

    Examples
    --------
    >>> from sampling.formats.records import ExportImage, ExportMask
    >>> rle = {"size": [2, 2], "counts": "031"}
    >>> image = ExportImage(7, "a.jpg", 2, 2, 0.9, (ExportMask(1, "disc", rle, 0.8),), "v1")
    >>> document = build_coco([image], [(1, "disc")])
    >>> document["images"][0]["id"], document["annotations"][0]
    (7, {'id': 1, 'image_id': 7, 'category_id': 1, 'segmentation': {'size': [2, 2], 'counts': '031'}, 'area': 3, 'bbox': [0.0, 0.0, 2.0, 2.0], 'iscrowd': 0, 'score': 0.8})
    """
    known = _categories(categories)
    out_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    seen: set[int] = set()
    for image in images:
        where = f"item {image.item_id}"
        if image.item_id in seen:
            raise FormatError(where, "item_id", "appears twice")
        seen.add(image.item_id)
        out_images.append(
            {
                "id": image.item_id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
                "segmon_item_id": image.item_id,
                "segmon_model_version": image.model_version,
                "segmon_priority": float(image.priority),
            }
        )
        for k, instance in enumerate(image.masks):
            if instance.category_id not in known:
                raise FormatError(
                    where, f"masks[{k}].category_id", f"{instance.category_id} is not a category"
                )
            mask = image_mask(instance.rle, image.height, image.width, where=where, k=k)
            area = int(mask.sum())
            if area == 0:
                continue
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image.item_id,
                "category_id": instance.category_id,
                "segmentation": {
                    "size": [image.height, image.width],
                    "counts": _compressed_counts(instance.rle["counts"], mask),
                },
                "area": area,
                "bbox": [
                    float(cols[0]),
                    float(rows[0]),
                    float(cols[-1] - cols[0] + 1),
                    float(rows[-1] - rows[0] + 1),
                ],
                "iscrowd": 0,
            }
            if instance.score is not None:
                annotation["score"] = float(instance.score)
            annotations.append(annotation)
    return {
        "info": {"description": "segmon annotation queue export"},
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for i, n in categories],
    }


def parse_coco(document: Mapping[str, Any]) -> list[ReturnedImage]:
    """Read a COCO instances document (RLE and polygon segmentations) into returned images.

    Examples
    --------
    >>> document = {"images": [{"id": 1, "file_name": "a.jpg", "width": 3, "height": 2,
    ...                         "segmon_item_id": 7}],
    ...             "annotations": [{"id": 1, "image_id": 1, "category_id": 2,
    ...                              "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}],
    ...             "categories": [{"id": 2, "name": "box"}]}
    >>> image = parse_coco(document)[0]
    >>> image.item_id, image.annotations[0].category_name
    (7, 'box')
    >>> rle_to_mask(image.annotations[0].rle, where="a", field="rle").tolist()
    [[1, 1, 0], [1, 1, 0]]
    """
    if not isinstance(document, Mapping):
        raise FormatError("coco", "document", "must be a COCO instances object")
    names = _category_names(document.get("categories"))
    images = _list(document, "images")
    by_id: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    for index, image in enumerate(images):
        where = f"images[{index}]"
        if not isinstance(image, Mapping):
            raise FormatError(where, "image", "must be an object")
        ident = image.get("id")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident in by_id:
            raise FormatError(where, "id", f"must be a unique integer, got {ident!r}")
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise FormatError(where, "file_name", f"missing, got {file_name!r}")
        height, width = image_size(
            image.get("height"),
            image.get("width"),
            where=f"image {file_name!r}",
            field="height/width",
        )
        item_id = image.get("segmon_item_id")
        if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
            raise FormatError(
                f"image {file_name!r}", "segmon_item_id", f"must be an integer, got {item_id!r}"
            )
        by_id[ident] = {
            "item_id": item_id,
            "file_name": file_name,
            "width": width,
            "height": height,
            "annotations": [],
        }
        order.append(ident)
    for index, annotation in enumerate(_list(document, "annotations")):
        where = f"annotations[{index}]"
        if not isinstance(annotation, Mapping):
            raise FormatError(where, "annotation", "must be an object")
        where = f"annotation {annotation.get('id', f'#{index}')}"
        image_id = annotation.get("image_id")
        if image_id not in by_id:
            raise FormatError(where, "image_id", f"{image_id!r} is not an image of the file")
        category_id = annotation.get("category_id")
        if category_id not in names:
            raise FormatError(where, "category_id", f"{category_id!r} is not a category")
        target = by_id[image_id]
        rle = _segmentation(
            annotation.get("segmentation"), target["height"], target["width"], where
        )
        target["annotations"].append(ReturnedAnnotation(names[category_id], rle))
    return [
        ReturnedImage(
            by_id[i]["item_id"],
            by_id[i]["file_name"],
            by_id[i]["width"],
            by_id[i]["height"],
            tuple(by_id[i]["annotations"]),
            None,
            False,
        )
        for i in order
    ]


def _compressed_counts(counts: object, mask: BinaryMask) -> str:
    """Return the counts string as given (checked), or re-encode uncompressed RLE."""
    if isinstance(counts, str):
        return counts
    if isinstance(counts, bytes):
        return counts.decode("ascii")
    return str(mask_to_rle(mask)["counts"])


def _segmentation(segmentation: object, height: int, width: int, where: str) -> dict[str, Any]:
    if isinstance(segmentation, Mapping):
        mask = rle_to_mask(segmentation, where=where, field="segmentation")
        if mask.shape != (height, width):
            raise FormatError(
                where,
                "segmentation.size",
                f"{list(mask.shape)} differs from the image's [{height}, {width}]",
            )
        return mask_to_rle(mask)
    if isinstance(segmentation, Sequence) and not isinstance(segmentation, str):
        return polygons_to_rle(segmentation, height, width, where=where, field="segmentation")
    raise FormatError(where, "segmentation", f"must be RLE or polygons, got {segmentation!r}")


def _list(document: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = document.get(key, [])
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise FormatError("coco", key, "must be a list")
    return value


def _categories(categories: Sequence[tuple[int, str]]) -> set[int]:
    ids = [c[0] for c in categories]
    names = [c[1] for c in categories]
    if len(set(ids)) != len(ids) or len(set(names)) != len(names):
        raise FormatError("coco", "categories", f"ids and names must be unique: {categories}")
    return set(ids)


def _category_names(categories: object) -> dict[int, str]:
    if not isinstance(categories, Sequence) or isinstance(categories, str):
        raise FormatError("coco", "categories", "missing or not a list")
    names: dict[int, str] = {}
    for index, category in enumerate(categories):
        if not isinstance(category, Mapping):
            raise FormatError(f"categories[{index}]", "category", "must be an object")
        ident, name = category.get("id"), category.get("name")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident in names:
            raise FormatError(f"categories[{index}]", "id", f"must be a unique integer: {ident!r}")
        if not isinstance(name, str) or not name:
            raise FormatError(f"categories[{index}]", "name", f"missing, got {name!r}")
        names[ident] = name
    return names
