"""Import a labeled holdout (COCO instances JSON + image folder).

Categories are matched to the production model's categories by name (with
``add_categories``, the file's unknown ones are added under the file's ids). segmon
gives every annotation its own id (never 0): pycocotools treats annotation id 0 as
"unmatched" and silently lowers AP, so files whose ids start at 0 are safe once
imported. Masks (polygons, RLE, uncompressed RLE with ``iscrowd``) are stored as
compressed RLE with their pycocotools pixel area, beside the annotation's own ``area``
(COCOeval's size ranges use that one). Without images (``images_dir=None``) widths and
heights come from the file and no image is read: the holdout serves evaluations of
results files, and the jobs that need pixels skip its images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import InvalidInputError, NotFoundError
from monitor.images import ImageAccess
from monitor.ingest.coco_checks import check_annotation_references, read_holdout_image
from monitor.masks import CompressedMask, MaskError, to_compressed
from monitor.storage.categories import add_category
from monitor.storage.schema import Category, Dataset, DatasetImage, GroundTruthInstance


class DatasetExistsError(InvalidInputError):
    """A dataset of that name was imported already."""


@dataclass(frozen=True)
class HoldoutReport:
    """What one holdout import stored."""

    name: str
    dataset_id: int
    images: int
    instances: int
    crowd: int
    renumbered: bool
    unused_categories: tuple[str, ...]
    added_categories: tuple[tuple[int, str, str], ...] = ()
    """(id, name, supercategory) of the categories ``add_categories`` stored."""
    with_images: bool = True

    def counts(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return {
            "name": self.name,
            "dataset_id": self.dataset_id,
            "images": self.images,
            "instances": self.instances,
            "crowd": self.crowd,
            "renumbered": self.renumbered,
            "unused_categories": list(self.unused_categories),
            "added_categories": [
                {"id": i, "name": n, "supercategory": s} for i, n, s in self.added_categories
            ],
            "with_images": self.with_images,
        }


def _int_field(what: str, obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{what}: {key} {value!r} is not an integer")
    return value


def _category_map(
    session: Session,
    coco_categories: list[Mapping[str, Any]],
    used_ids: set[int],
    add_unknown: bool,
) -> tuple[dict[int, int], tuple[str, ...], tuple[tuple[int, str, str], ...]]:
    known = {c.name: c.id for c in session.scalars(select(Category))}
    mapping: dict[int, int] = {}
    unused: list[str] = []
    unknown: list[tuple[int, str, str]] = []
    for index, category in enumerate(coco_categories):
        if not isinstance(category, dict):
            raise InvalidInputError(f"categories[{index}]: {category!r:.80} is not an object")
        cid = _int_field(f"categories[{index}]", category, "id")
        name = category.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"categories[{index}] (id {cid}): name {name!r} is not a name")
        if name in known:
            mapping[cid] = known[name]
        elif cid in used_ids:
            unknown.append((cid, name, str(category.get("supercategory") or "")))
        else:
            unused.append(name)
    if unknown and not add_unknown:
        raise InvalidInputError(
            f"holdout categories {sorted(n for _, n, _ in unknown)} are not among the model's "
            f"categories {sorted(known)}: rerun with --add-categories to add them with the "
            "file's ids, or `segmon categories add ID NAME` each one with the id the model emits"
        )
    for cid, name, supercategory in unknown:
        add_category(session, cid, name, supercategory)
        mapping[cid] = cid
    return mapping, tuple(sorted(unused)), tuple(unknown)


def _area(what: str, ann: Mapping[str, Any]) -> float | None:
    """Return the annotation's own area (COCOeval's size ranges use it), if it states one."""
    area = ann.get("area")
    if area is None:
        return None
    if not isinstance(area, int | float) or isinstance(area, bool) or not math.isfinite(area):
        raise InvalidInputError(f"{what}: area {area!r} is not a number")
    if area < 0:
        raise InvalidInputError(f"{what}: area {area!r} is negative")
    return float(area)


def ground_truth_row(
    mask: CompressedMask,
    category_id: int,
    *,
    source_annotation_id: int | None = None,
    iscrowd: bool = False,
    box: Sequence[float] | None = None,
    coco_area: float | None = None,
) -> dict[str, Any]:
    """Return the ``ground_truth_instances`` columns of one labeled mask (all but its image).

    The box and pixel area are pycocotools' of the validated mask (a crowd region may
    keep its file's ``box``); ``coco_area`` is the annotation's own ``area`` where the
    file states one.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.masks import encode_mask
    >>> m = np.zeros((4, 6), bool); m[1:3, 2:5] = True
    >>> row = ground_truth_row(encode_mask(m), 2)
    >>> row["category_id"], row["area"], (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
    (2, 6, (2.0, 1.0, 3.0, 2.0))
    """
    corners = mask.bbox if box is None else box
    return {
        "source_annotation_id": source_annotation_id,
        "category_id": category_id,
        "iscrowd": iscrowd,
        "bbox_x": float(corners[0]),
        "bbox_y": float(corners[1]),
        "bbox_w": float(corners[2]),
        "bbox_h": float(corners[3]),
        "area": mask.area,
        "coco_area": coco_area,
        "rle_counts": mask.counts,
    }


def import_holdout(
    sessions: sessionmaker[Session],
    coco_json: Path,
    images_dir: Path | None,
    name: str,
    clock: Clock,
    progress: Callable[[int, int], None] | None = None,
    *,
    add_categories: bool = False,
    access: ImageAccess | None = None,
) -> HoldoutReport:
    """Import a COCO instances file as the labeled dataset ``name``.

    Parameters
    ----------
    sessions
        Session factory of a migrated database with the model's categories.
    coco_json
        COCO instances JSON: images, annotations (polygons, RLE or uncompressed RLE),
        categories.
    images_dir
        Folder the images' ``file_name``s are relative to; ``None`` imports the
        annotations alone (no image is read; sizes from the file).
    name
        Name of the new dataset (unique).
    clock
        Stamps ``created_at``.
    progress
        Told (images done, images total).
    add_categories
        Store the file's categories the database lacks (by name) under the file's ids,
        instead of refusing them.
    access
        Where images may come from besides ``images_dir`` and how large they may be.

    Returns
    -------
    HoldoutReport
        Counts; ``renumbered`` says the file used annotation id 0.

    Raises
    ------
    DatasetExistsError
        If ``name`` was imported already.
    InvalidInputError
        For an unreadable file, an image or annotation without a field it needs, a
        missing or unreadable image, an image whose size disagrees with the file, a bad
        mask, a category the model does not have, annotations for images the file does
        not have, or an annotation id used twice; the message names it. Nothing is
        stored then.
    """
    try:
        doc = json.loads(coco_json.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read COCO file {str(coco_json)!r}: {exc}") from exc
    if not isinstance(doc, dict) or not all(
        k in doc for k in ("images", "annotations", "categories")
    ):
        raise InvalidInputError(
            f"{str(coco_json)!r} is not a COCO instances file (images, annotations, categories)"
        )
    if images_dir is not None and not images_dir.is_dir():
        raise NotFoundError(f"images folder {str(images_dir)!r} does not exist")
    annotations: list[dict[str, Any]] = doc["annotations"]
    renumbered = any(a.get("id") == 0 for a in annotations if isinstance(a, dict))
    by_image: dict[int, list[dict[str, Any]]] = {}
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise InvalidInputError(f"annotations[{index}]: {ann!r:.80} is not an object")
        what = f"annotation {ann.get('id', f'[{index}]')!r}"
        for key in ("image_id", "category_id"):
            _int_field(what, ann, key)
        if "segmentation" not in ann:
            raise InvalidInputError(f"{what} has no segmentation (keys: {sorted(ann)})")
        by_image.setdefault(ann["image_id"], []).append(ann)
    check_annotation_references(doc["images"], annotations)
    crowd = 0
    with sessions.begin() as session:
        if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
            raise DatasetExistsError(f"dataset {name!r} exists already; choose another --name")
        mapping, unused, added = _category_map(
            session,
            doc["categories"],
            {int(a["category_id"]) for a in annotations},
            add_categories,
        )
        dataset = Dataset(
            name=name, kind="holdout", source_uri=str(coco_json.resolve()), created_at=clock.now()
        )
        session.add(dataset)
        session.flush()
        image_rows: list[dict[str, Any]] = []
        gt_rows: list[tuple[int, dict[str, Any]]] = []
        total = len(doc["images"])
        for done, image in enumerate(doc["images"], start=1):
            if not isinstance(image, dict):
                raise InvalidInputError(f"images[{done - 1}]: {image!r:.80} is not an object")
            image_id = _int_field(f"images[{done - 1}]", image, "id")
            what = f"image {image_id}"
            file_name = str(image.get("file_name", ""))
            if not file_name and images_dir is not None:
                raise InvalidInputError(f"{what} has no file_name")
            width = _int_field(what, image, "width")
            height = _int_field(what, image, "height")
            if width < 1 or height < 1:
                raise InvalidInputError(f"{what} is {width}x{height}: not an image size")
            uri: str | None = None
            sha: str | None = None
            if images_dir is not None:
                try:
                    found = read_holdout_image(images_dir, file_name, access)
                except InvalidInputError as exc:
                    raise InvalidInputError(f"holdout {name!r}: {exc}") from None
                size = (found.width, found.height)
                if size != (width, height):
                    raise InvalidInputError(
                        f"image {file_name!r} is {size[0]}x{size[1]}, the COCO file says {width}x{height}"
                    )
                uri, sha = found.path, found.sha256
            image_rows.append(
                {
                    "dataset_id": dataset.id,
                    "source_image_id": image_id,
                    "file_name": file_name or str(image_id),
                    "image_uri": uri,
                    "image_sha256": sha,
                    "width": width,
                    "height": height,
                }
            )
            for ann in by_image.get(image_id, []):
                try:
                    mask = to_compressed(ann["segmentation"], height, width)
                except MaskError as exc:
                    raise InvalidInputError(
                        f"annotation {ann.get('id')!r} on {file_name!r}: {exc}"
                    ) from exc
                is_crowd = bool(ann.get("iscrowd", 0))
                crowd += is_crowd
                gt_rows.append(
                    (
                        len(image_rows) - 1,
                        ground_truth_row(
                            mask,
                            mapping[int(ann["category_id"])],
                            source_annotation_id=ann.get("id"),
                            iscrowd=is_crowd,
                            box=ann["bbox"] if is_crowd and ann.get("bbox") else None,
                            coco_area=_area(f"annotation {ann.get('id')!r}", ann),
                        ),
                    )
                )
            if progress:
                progress(done, total)
        image_ids = (
            session.scalars(
                insert(DatasetImage).returning(DatasetImage.id, sort_by_parameter_order=True),
                image_rows,
            ).all()
            if image_rows
            else []
        )
        if gt_rows:
            session.execute(
                insert(GroundTruthInstance),
                [{"image_id": image_ids[i]} | row for i, row in gt_rows],
            )
        dataset_id = dataset.id
    return HoldoutReport(
        name,
        dataset_id,
        len(image_rows),
        len(gt_rows),
        crowd,
        renumbered,
        unused,
        added,
        images_dir is not None,
    )
