"""COCO instances JSON: exports pycocotools reads back exactly, and returned COCO files."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sampling.formats.coco_json import build_coco, parse_coco
from sampling.formats.mask_codec import rle_to_mask
from sampling.formats.records import FormatError
from tests.support.export_masks import CATEGORIES, export_images, mask_zoo


def test_the_export_loads_in_pycocotools_with_exactly_the_masks() -> None:
    rng = np.random.default_rng(2)
    zoo = mask_zoo(rng, 30, 44)
    empty = np.zeros((30, 44), dtype=np.uint8)
    images = export_images(rng, [zoo[:6], zoo[6:] + [empty], []], size=(30, 44))
    document = json.loads(json.dumps(build_coco(images, CATEGORIES)))
    coco = COCO()
    coco.dataset = document
    coco.createIndex()
    assert sorted(coco.getImgIds()) == [101, 102, 103]
    assert [a["id"] for a in document["annotations"]] == list(
        range(1, len(document["annotations"]) + 1)
    )  # ids from 1: pycocotools reads id 0 as "unmatched"
    for image in images:
        kept = [m for m in image.masks if rle_to_mask(m.rle, where="t", field="r").any()]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image.item_id]))
        assert len(annotations) == len(kept)  # the empty mask is left out
        for instance, annotation in zip(kept, annotations, strict=True):
            expected = rle_to_mask(instance.rle, where="t", field="r")
            assert (coco.annToMask(annotation) == expected).all()
            assert annotation["category_id"] == instance.category_id
            assert annotation["score"] == instance.score
            rle = {"size": [30, 44], "counts": instance.rle["counts"].encode()}
            assert annotation["area"] == int(mask_utils.area(rle))
            assert annotation["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
        (meta,) = coco.loadImgs([image.item_id])
        assert meta["segmon_item_id"] == image.item_id and meta["file_name"] == image.file_name


def test_a_round_trip_returns_the_item_ids_and_the_masks() -> None:
    rng = np.random.default_rng(4)
    images = export_images(rng, [mask_zoo(rng, 20, 25), []], size=(20, 25))
    returned = parse_coco(build_coco(images, CATEGORIES))
    assert [r.item_id for r in returned] == [101, 102]
    kept = [m for m in images[0].masks if rle_to_mask(m.rle, where="t", field="r").any()]
    assert [a.category_name for a in returned[0].annotations] == [m.category_name for m in kept]
    assert [a.rle for a in returned[0].annotations] == [m.rle for m in kept]
    assert returned[1].annotations == ()


def _returned_document() -> dict[str, Any]:
    square = np.zeros((6, 8), dtype=np.uint8)
    square[1:4, 2:5] = 1
    column_major = square.T.ravel()
    change = np.flatnonzero(column_major[1:] != column_major[:-1]) + 1
    runs = np.diff(np.concatenate(([0], change, [column_major.size]))).tolist()
    compressed = mask_utils.encode(np.asfortranarray(square))
    return {
        "images": [
            {
                "id": 1,
                "file_name": "queue/000101.jpg",
                "width": 8,
                "height": 6,
                "segmon_item_id": 101,
            },
            {"id": 2, "file_name": "renumbered.jpg", "width": 8, "height": 6},
        ],  # fmt: skip
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 4,
                "segmentation": {"size": [6, 8], "counts": compressed["counts"].decode()},
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "segmentation": {"size": [6, 8], "counts": runs},
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "segmentation": [[2.0, 1.0, 5.0, 1.0, 5.0, 4.0, 2.0, 4.0]],
            },
        ],  # fmt: skip
        "categories": [{"id": 2, "name": "box"}, {"id": 4, "name": "star"}],
    }


def test_parse_reads_compressed_and_uncompressed_rle_and_polygons() -> None:
    first, second = parse_coco(_returned_document())
    square = np.zeros((6, 8), dtype=np.uint8)
    square[1:4, 2:5] = 1
    assert (first.item_id, second.item_id) == (101, None)  # ids are not trusted, only ours
    assert [a.category_name for a in first.annotations] == ["star", "box"]
    for annotation in first.annotations:
        assert (rle_to_mask(annotation.rle, where="t", field="r") == square).all()
    polygon = rle_to_mask(second.annotations[0].rle, where="t", field="r")
    reference = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects([[2.0, 1.0, 5.0, 1.0, 5.0, 4.0, 2.0, 4.0]], 6, 8))
    )
    assert (polygon == reference).all()


@pytest.mark.parametrize(
    ("path", "value", "where", "field"),
    [
        (("annotations", 0, "category_id"), 9, "annotation 1", "category_id"),
        (("annotations", 0, "image_id"), 7, "annotation 1", "image_id"),
        (("annotations", 0, "segmentation", "counts"), "0", "annotation 1", "segmentation.counts"),
        (("annotations", 0, "segmentation", "size"), [6, 9], "annotation 1", "segmentation.counts"),
        (("annotations", 1, "segmentation", "counts"), [1, -1, 48], "annotation 2", "segmentation.counts"),
        (("annotations", 2, "segmentation"), [[1.0, 2.0]], "annotation 3", "segmentation"),
        (("annotations", 2, "segmentation"), "x", "annotation 3", "segmentation"),
        (("images", 0, "width"), 0, "image 'queue/000101.jpg'", "height/width"),
        (("images", 1, "id"), 1, "images[1]", "id"),
    ],
)  # fmt: skip
def test_a_malformed_coco_file_names_the_annotation_and_the_field(
    path: tuple[Any, ...], value: Any, where: str, field: str
) -> None:
    document = _returned_document()
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(FormatError) as raised:
        parse_coco(document)
    assert (raised.value.where, raised.value.field) == (where, field)


def test_a_mask_whose_size_differs_from_its_image_is_not_exported() -> None:
    images = export_images(np.random.default_rng(1), [mask_zoo(np.random.default_rng(1), 8, 8)])
    bad = images[0].__class__(**{**images[0].__dict__, "width": 9})
    with pytest.raises(FormatError) as raised:
        build_coco([bad], CATEGORIES)
    assert (raised.value.where, raised.value.field) == ("item 101", "masks[0].rle.size")
