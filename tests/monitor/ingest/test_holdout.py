from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import CategorySpec
from monitor.errors import InvalidInputError
from monitor.ingest.holdout import DatasetExistsError, import_holdout
from monitor.masks import encode_mask
from monitor.storage.bootstrap import sync_categories
from monitor.storage.schema import Category, DatasetImage, GroundTruthInstance

CLOCK = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))


def reference_area(
    segmentation: list[list[float]] | dict[str, Any], height: int, width: int
) -> int:
    """pycocotools' area of the decoded mask, computed independently of segmon."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    return int(mask_utils.decode(rle).sum())


def test_borrat_train_imports_with_exact_areas(
    sessions: sessionmaker[Session], borrat: Path
) -> None:
    sync_categories(sessions, [CategorySpec(id=5, name="human")])
    coco = borrat / "train" / "_annotations.coco.json"
    report = import_holdout(sessions, coco, borrat / "train", "borrat-train", CLOCK)
    assert (report.images, report.instances, report.renumbered) == (320, 326, False)
    assert report.unused_categories == ("objects",)
    doc = json.loads(coco.read_text())
    images = {img["id"]: img for img in doc["images"]}
    expected = {
        a["id"]: reference_area(
            a["segmentation"], images[a["image_id"]]["height"], images[a["image_id"]]["width"]
        )
        for a in doc["annotations"]
    }
    kinds = {type(a["segmentation"]).__name__ for a in doc["annotations"]}
    assert kinds == {"dict", "list"}  # RLE and polygons both exercised
    with sessions() as s:
        rows = s.execute(
            select(
                GroundTruthInstance.source_annotation_id,
                GroundTruthInstance.area,
                GroundTruthInstance.category_id,
            )
        ).all()
        names = s.scalars(select(DatasetImage.file_name)).all()
    assert {r.source_annotation_id: r.area for r in rows} == expected
    assert {r.category_id for r in rows} == {5}
    assert sum(n.startswith("-") for n in names) > 0


def write_coco(root: Path, first_id: int, categories: tuple[str, ...] = ("disc", "box")) -> Path:
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    anns, imgs = [], []
    next_id = first_id
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(images_dir / f"-img{i}.png")
        imgs.append({"id": i, "file_name": f"-img{i}.png", "width": 30, "height": 20})
        for k in range(len(categories)):
            mask = np.zeros((20, 30), bool)
            mask[2 + k * 8 : 8 + k * 8, 3 + i : 12 + i] = True
            m = encode_mask(mask)
            anns.append(
                {
                    "id": next_id,
                    "image_id": i,
                    "category_id": 7 + k,
                    "iscrowd": 0,
                    "bbox": list(m.bbox),
                    "area": 1,
                    "segmentation": {"size": [20, 30], "counts": m.counts},
                }
            )
            next_id += 1
    cats = [{"id": 7 + k, "name": name} for k, name in enumerate(categories)]
    path = root / "coco.json"
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return path


def test_annotation_ids_from_zero_are_renumbered(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_coco(tmp_path, first_id=0)
    report = import_holdout(sessions, path, tmp_path / "images", "zero", CLOCK)
    assert report.renumbered and report.instances == 6
    with sessions() as s:
        rows = s.execute(
            select(
                GroundTruthInstance.id,
                GroundTruthInstance.source_annotation_id,
                GroundTruthInstance.category_id,
                Category.name,
            ).join(Category)
        ).all()
    assert min(r.id for r in rows) >= 1
    assert sorted(r.source_annotation_id for r in rows) == list(range(6))
    # matched by name: file ids 7/8 become the model's disc/box ids
    assert {r.name: r.category_id for r in rows} == {"disc": 1, "box": 2}


def test_unknown_category_and_duplicate_name_are_refused(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    bad = write_coco(tmp_path / "a", first_id=1, categories=("disc", "zebra"))
    with pytest.raises(InvalidInputError, match="zebra"):
        import_holdout(sessions, bad, tmp_path / "a" / "images", "h", CLOCK)
    good = write_coco(tmp_path / "b", first_id=1)
    import_holdout(sessions, good, tmp_path / "b" / "images", "h", CLOCK)
    with pytest.raises(DatasetExistsError, match="'h'"):
        import_holdout(sessions, good, tmp_path / "b" / "images", "h", CLOCK)


def test_image_size_disagreeing_with_file_is_named(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_coco(tmp_path, first_id=1)
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(tmp_path / "images" / "-img1.png")
    with pytest.raises(InvalidInputError, match=r"-img1.png.*30x21"):
        import_holdout(sessions, path, tmp_path / "images", "h", CLOCK)
    with sessions() as s:
        assert s.scalars(select(DatasetImage)).all() == []  # nothing half-imported
