"""Import a labeled holdout (COCO instances JSON + image folder).

Categories are matched to the production model's categories by name. segmon gives
every annotation its own id (never 0): pycocotools treats annotation id 0 as
"unmatched" and silently lowers AP, so files whose ids start at 0 are safe once
imported. Masks (polygons, RLE, uncompressed RLE with ``iscrowd``) are stored as
compressed RLE with their pycocotools area.
"""

from __future__ import annotations

import json
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
from monitor.masks import MaskError, to_compressed
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
        }


def _category_map(
    coco_categories: list[Mapping[str, Any]],
    used_ids: set[int],
    known: Mapping[str, int],
) -> tuple[dict[int, int], tuple[str, ...]]:
    mapping: dict[int, int] = {}
    unused: list[str] = []
    unknown: list[str] = []
    for category in coco_categories:
        name = str(category.get("name"))
        cid = int(category["id"])
        if name in known:
            mapping[cid] = known[name]
        elif cid in used_ids:
            unknown.append(name)
        else:
            unused.append(name)
    if unknown:
        raise InvalidInputError(
            f"holdout categories {sorted(unknown)} are not among the model's categories "
            f"{sorted(known)}; add them to `categories` in the config"
        )
    return mapping, tuple(sorted(unused))


def import_holdout(
    sessions: sessionmaker[Session],
    coco_json: Path,
    images_dir: Path,
    name: str,
    clock: Clock,
    progress: Callable[[int, int], None] | None = None,
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
        Folder the images' ``file_name``s are relative to.
    name
        Name of the new dataset (unique).
    clock
        Stamps ``created_at``.
    progress
        Told (images done, images total).
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
        For an unreadable file, a missing or unreadable image, an image whose size
        disagrees with the file, a bad mask, a category the model does not have,
        annotations for images the file does not have, or an annotation id used twice;
        the message names it. Nothing is stored then.
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
    if not images_dir.is_dir():
        raise NotFoundError(f"images folder {str(images_dir)!r} does not exist")
    annotations: list[dict[str, Any]] = doc["annotations"]
    check_annotation_references(doc["images"], annotations)
    renumbered = any(a.get("id") == 0 for a in annotations)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in annotations:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    crowd = 0
    with sessions.begin() as session:
        if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
            raise DatasetExistsError(f"dataset {name!r} exists already; choose another --name")
        known = {c.name: c.id for c in session.scalars(select(Category))}
        mapping, unused = _category_map(
            doc["categories"], {int(a["category_id"]) for a in annotations}, known
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
            file_name = str(image["file_name"])
            width, height = int(image["width"]), int(image["height"])
            try:
                found = read_holdout_image(images_dir, file_name, access)
            except InvalidInputError as exc:
                raise InvalidInputError(f"holdout {name!r}: {exc}") from None
            size = (found.width, found.height)
            if size != (width, height):
                raise InvalidInputError(
                    f"image {file_name!r} is {size[0]}x{size[1]}, the COCO file says {width}x{height}"
                )
            image_rows.append(
                {
                    "dataset_id": dataset.id,
                    "source_image_id": int(image["id"]),
                    "file_name": file_name,
                    "image_uri": found.path,
                    "image_sha256": found.sha256,
                    "width": width,
                    "height": height,
                }
            )
            for ann in by_image.get(int(image["id"]), []):
                try:
                    mask = to_compressed(ann["segmentation"], height, width)
                except MaskError as exc:
                    raise InvalidInputError(
                        f"annotation {ann.get('id')!r} on {file_name!r}: {exc}"
                    ) from exc
                is_crowd = bool(ann.get("iscrowd", 0))
                crowd += is_crowd
                box: Sequence[float] = ann["bbox"] if is_crowd and ann.get("bbox") else mask.bbox
                gt_rows.append(
                    (
                        len(image_rows) - 1,
                        {
                            "source_annotation_id": ann.get("id"),
                            "category_id": mapping[int(ann["category_id"])],
                            "iscrowd": is_crowd,
                            "bbox_x": float(box[0]),
                            "bbox_y": float(box[1]),
                            "bbox_w": float(box[2]),
                            "bbox_h": float(box[3]),
                            "area": mask.area,
                            "rle_counts": mask.counts,
                        },
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
    return HoldoutReport(name, dataset_id, len(image_rows), len(gt_rows), crowd, renumbered, unused)
