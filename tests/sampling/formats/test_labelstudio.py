"""Label Studio: brush RLE bit-exact against Label Studio's own code, tasks, config, import."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sampling.formats.labelstudio import (
    brush_decode,
    brush_decode_values,
    brush_encode,
    brush_encode_values,
    build_tasks,
    labeling_config,
    parse_export,
)
from sampling.formats.mask_codec import rle_to_mask
from sampling.formats.records import FormatError
from tests.support import vendored_ls_brush as ls
from tests.support.export_masks import export_images, mask_zoo

# Worked example from label-studio-sdk's own tests (tests/custom/converter/test_brush.py,
# test_rle_encoding; Apache-2.0, HumanSignal): these RGBA values encode to these bytes.
LS_VALUES = [1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 4, 4, 4, 4, 4, 4, 4, 4]
LS_BYTES = [0, 0, 0, 18, 57, 27, 252, 96, 32, 1, 0, 6, 0, 40, 0, 192, 3, 128, 17, 56, 32]


class _Bits:
    """Read bits as thi.ng rle-pack's BitInputStream does (MSB first)."""

    def __init__(self, data: list[int]) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value


def decode_from_rle_pack_doc(src: list[int]) -> np.ndarray:
    """The decoder written from rle-pack's ``decode`` quoted in label-studio-sdk's brush.py."""
    bits = _Bits(src)
    num = bits.read(32)
    word_size = bits.read(5) + 1
    rle_sizes = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint32)
    i = 0
    while i < num:
        x = bits.read(1)
        j = i + 1 + bits.read(rle_sizes[bits.read(2)])
        if x:
            out[i:j] = bits.read(word_size)
            i = j
        else:
            while i < j:
                out[i] = bits.read(word_size)
                i += 1
    return out


def test_the_worked_example_of_label_studio_encodes_and_decodes_exactly() -> None:
    values = np.asarray(LS_VALUES, dtype=np.uint8)
    assert brush_encode_values(values) == LS_BYTES
    assert brush_decode_values(LS_BYTES).tolist() == LS_VALUES
    assert ls.encode_rle(values) == LS_BYTES  # the vendored copy is the tool's


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (32, 48), (300, 301)])
def test_brush_encode_writes_the_bytes_label_studio_writes(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    for mask in mask_zoo(rng, *size) if min(size) > 2 else [np.ones(size, np.uint8)]:
        assert brush_encode(mask) == ls.mask2rle(mask * 255)


def test_long_runs_split_at_65536_values_as_label_studio_does() -> None:
    mask = np.ones((300, 300), dtype=np.uint8)  # 360,000 equal RGBA values in one run
    mask[150, 7] = 0
    encoded = brush_encode(mask)
    assert encoded == ls.mask2rle(mask * 255)
    assert (brush_decode(encoded, 300, 300) == mask).all()


def test_the_decoder_reads_literal_records_and_other_field_sizes() -> None:
    # header: 5 values, word size 4, run-length field sizes 2, 3, 5, 12; then a literal
    # record of 3 values (0|00|10|1|2|3) and a run of 2 sevens (1|00|01|7)
    bits = f"{5:032b}{3:05b}{1:04b}{2:04b}{4:04b}{11:04b}" + "0" + "00" + "10"
    bits += f"{1:04b}{2:04b}{3:04b}" + "1" + "00" + "01" + f"{7:04b}"
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[k : k + 8], 2) for k in range(0, len(bits), 8)]
    assert brush_decode_values(rle).tolist() == [1, 2, 3, 7, 7]
    assert decode_from_rle_pack_doc(rle).tolist() == [1, 2, 3, 7, 7]


def test_tasks_decode_with_label_studio_code_to_exactly_the_exported_masks() -> None:
    rng = np.random.default_rng(7)
    zoo = mask_zoo(rng, 40, 56)
    empty = np.zeros((40, 56), dtype=np.uint8)
    images = export_images(rng, [zoo[:5], zoo[5:] + [empty], []], size=(40, 56))
    tasks = json.loads(json.dumps(build_tasks(images)))  # survives JSON as a file would
    assert [t["data"]["segmon_item_id"] for t in tasks] == [101, 102, 103]
    for image, task in zip(images, tasks, strict=True):
        (prediction,) = task["predictions"]
        assert prediction["score"] == image.priority
        assert prediction["model_version"] == "prod-2026.11.1"
        kept = [m for m in image.masks if rle_to_mask(m.rle, where="t", field="r").any()]
        assert len(prediction["result"]) == len(kept)  # the empty mask is left out
        for instance, result in zip(kept, prediction["result"], strict=True):
            expected = rle_to_mask(instance.rle, where="t", field="r")
            assert result["type"] == "brushlabels"
            assert result["value"]["brushlabels"] == [instance.category_name]
            assert (result["original_width"], result["original_height"]) == (56, 40)
            rle = result["value"]["rle"]
            by_tool = ls.decode_rle(rle).reshape(40, 56, 4)[:, :, 3] > 0
            by_doc = decode_from_rle_pack_doc(rle).reshape(40, 56, 4)[:, :, 3] > 0
            assert (by_tool == expected.astype(bool)).all()
            assert (by_doc == expected.astype(bool)).all()


def test_labeling_config_names_the_tools_the_tasks_use() -> None:
    config = ElementTree.fromstring(labeling_config(["disc", "box"], from_name="seg"))
    brush = config.find("BrushLabels")
    polygon = config.find("PolygonLabels")
    assert brush is not None and polygon is not None
    assert brush.get("name") == "seg" and brush.get("toName") == "image"
    assert [label.get("value") for label in brush] == ["disc", "box"]
    assert [label.get("value") for label in polygon] == ["disc", "box"]
    assert config.find("Image") is not None and config.find("Image").get("value") == "$image"  # type: ignore[union-attr]
    with pytest.raises(FormatError, match="duplicate"):
        labeling_config(["disc", "disc"])


def _brush_result(mask: np.ndarray, label: str, ident: str) -> dict[str, Any]:
    h, w = mask.shape
    return {
        "id": ident,
        "type": "brushlabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": {"format": "rle", "rle": ls.mask2rle(mask * 255), "brushlabels": [label]},
    }


def _export_document(masks: list[np.ndarray]) -> list[dict[str, Any]]:
    """A Label Studio JSON export as the app writes it (brush, polygon, cancelled...)."""
    h, w = masks[0].shape
    polygon = {
        "id": "p1",
        "type": "polygonlabels",
        "from_name": "label_polygon",
        "to_name": "image",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": {
            "points": [[12.5, 25.0], [50.0, 25.0], [50.0, 75.0], [12.5, 75.0]],
            "closed": True,
            "polygonlabels": ["box"],
        },
    }
    box = {
        "id": "r1",
        "type": "rectanglelabels",
        "original_width": w,
        "original_height": h,
        "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["disc"]},
    }
    data = {"image": "queue/000101.jpg", "segmon_item_id": 101, "segmon_width": w,
            "segmon_height": h}  # fmt: skip
    return [
        {
            "id": 11,
            "data": data,
            "annotations": [
                {
                    "id": 5,
                    "completed_by": {"id": 2, "email": "ann@example.com"},
                    "was_cancelled": False,
                    "created_at": "2026-11-25T10:00:00Z",
                    "result": [_brush_result(masks[1], "star", "old")],
                },
                {
                    "id": 6,
                    "completed_by": {"id": 3, "email": "bob@example.com"},
                    "was_cancelled": False,
                    "created_at": "2026-11-26T10:00:00Z",
                    "result": [_brush_result(masks[0], "disc", "b1"), polygon, box],
                },
            ],
            "predictions": [],
        },
        {
            "id": 12,
            "data": {**data, "image": "queue/000102.jpg", "segmon_item_id": 102},
            "annotations": [{"id": 7, "completed_by": 4, "was_cancelled": True, "result": []}],
        },
        {
            "id": 13,
            "data": {**data, "image": "queue/000103.jpg", "segmon_item_id": 103},
            "annotations": [],
        },  # fmt: skip
        {
            "id": 14,
            "data": {"image": "s3://bucket/other.jpg"},
            "annotations": [{"id": 8, "completed_by": 4, "result": []}],
        },
    ]


def test_parse_export_reads_brush_and_polygon_results_and_cancelled_tasks() -> None:
    rng = np.random.default_rng(3)
    masks = mask_zoo(rng, 40, 56)
    returned = parse_export(_export_document(masks))
    assert [r.file_name for r in returned] == [
        "queue/000101.jpg",
        "queue/000102.jpg",
        "s3://bucket/other.jpg",
    ]  # the unannotated task 13 is not returned
    labelled, skipped, foreign = returned
    assert (labelled.item_id, labelled.annotator, labelled.skipped) == (
        101,
        "bob@example.com",
        False,
    )
    assert [a.category_name for a in labelled.annotations] == ["disc", "box"]
    assert (rle_to_mask(labelled.annotations[0].rle, where="t", field="r") == masks[0]).all()
    # the polygon, in percent of 56 x 40, is the pixel polygon (7,10)-(28,10)-(28,30)-(7,30)
    expected = mask_utils.decode(
        mask_utils.merge(
            mask_utils.frPyObjects([[7.0, 10.0, 28.0, 10.0, 28.0, 30.0, 7.0, 30.0]], 40, 56)
        )
    )
    assert (rle_to_mask(labelled.annotations[1].rle, where="t", field="r") == expected).all()
    assert labelled.unsupported == ("result r1: type rectanglelabels",)
    assert (skipped.item_id, skipped.skipped, skipped.annotations, skipped.annotator) == (
        102,
        True,
        (),
        "4",
    )
    assert (foreign.item_id, foreign.annotations, foreign.width) == (None, (), 0)


def test_a_round_trip_through_an_annotators_export_returns_the_exported_masks() -> None:
    rng = np.random.default_rng(11)
    images = export_images(rng, [mask_zoo(rng, 24, 30)])
    (task,) = build_tasks(images)
    task["annotations"] = [{"id": 1, "completed_by": 9, "result": task["predictions"][0]["result"]}]
    (returned,) = parse_export([task])
    assert [a.category_name for a in returned.annotations] == [
        m.category_name for m in images[0].masks
    ]
    for instance, back in zip(images[0].masks, returned.annotations, strict=True):
        assert back.rle == instance.rle


@pytest.mark.parametrize(
    ("change", "where", "field"),
    [
        (lambda t: t["data"].pop("image"), "task 11", "data.image"),
        (lambda t: t["data"].update(segmon_item_id="x"), "task 11", "data.segmon_item_id"),
        (lambda t: _result(t).update(original_width=57), "task 11 result b1", "original_width"),
        (lambda t: _result(t)["value"].update(rle=_result(t)["value"]["rle"][:9]), "task 11 result b1", "rle"),
        (lambda t: _result(t)["value"].update(rle="abc"), "task 11 result b1", "rle"),
        (lambda t: _result(t)["value"].update(brushlabels=[]), "task 11 result b1", "value.brushlabels"),
        (lambda t: _result(t, 1)["value"].update(points=[[1, "a"]]), "task 11 result p1", "value.points"),
        (lambda t: _result(t, 1)["value"].update(points=[[1, 2], [3, 4]]), "task 11 result p1", "value.points"),
    ],
)  # fmt: skip
def test_a_malformed_export_names_the_task_and_the_field(
    change: Any, where: str, field: str
) -> None:
    document = _export_document(mask_zoo(np.random.default_rng(3), 40, 56))
    change(document[0])
    with pytest.raises(FormatError) as raised:
        parse_export(document)
    assert (raised.value.where, raised.value.field) == (where, field)
    assert isinstance(raised.value, ValueError)


def _result(task: dict[str, Any], k: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = task["annotations"][1]["result"][k]
    return result


def test_a_document_that_is_not_a_task_list_is_refused() -> None:
    with pytest.raises(FormatError, match="list of tasks"):
        parse_export({"tasks": []})  # type: ignore[arg-type]


def test_brush_decode_refuses_a_header_for_another_image_size() -> None:
    rle = brush_encode(np.ones((4, 4), dtype=np.uint8))
    with pytest.raises(FormatError, match="holds 64 values, expected 80"):
        brush_decode(rle, 4, 5)
