"""CVAT for images 1.1: box RLE bit-exact against datumaro's decoder and CVAT's documentation."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sampling.formats.cvat import build_cvat_xml, cvat_mask_decode, cvat_mask_encode, parse_cvat_xml
from sampling.formats.mask_codec import rle_to_mask
from sampling.formats.records import FormatError
from tests.support.export_masks import CATEGORIES, export_images, mask_zoo
from tests.support.vendored_datumaro_cvat import cvat_mask_to_image

NAMES = [name for _, name in CATEGORIES]


def rle2mask_from_cvat_doc(rle: list[int], width: int, height: int) -> list[int]:
    """CVAT's ``rle2Mask`` (cvat-core object-utils, MIT) as documented: runs alternate
    0 and 1 starting with 0, filling ``width * height`` values row by row."""
    decoded = [0] * (width * height)
    index, value = 0, 0
    for count in rle:
        for _ in range(count):
            decoded[index] = value
            index += 1
        value = 1 - value
    return decoded


@pytest.mark.parametrize(
    ("flat", "rle"), [([0, 0, 0, 1], [3, 1]), ([1, 1, 0, 0], [0, 2, 2])]
)  # the worked examples of CVAT's mask2Rle/rle2Mask documentation
def test_the_worked_examples_of_cvat_decode_exactly(flat: list[int], rle: list[int]) -> None:
    assert cvat_mask_decode(rle, 0, 0, 4, 1, 1, 4).ravel().tolist() == flat
    assert rle2mask_from_cvat_doc(rle, 4, 1) == flat


def test_encode_starts_with_a_background_run_inside_the_inclusive_box() -> None:
    mask = np.zeros((3, 5), dtype=np.uint8)
    mask[0, 1:3] = 1  # box columns 1..4, rows 0..1: [1 1 0 0 / 0 0 0 1]
    mask[1, 4] = 1
    assert cvat_mask_encode(mask) == ([0, 2, 5, 1], 1, 0, 4, 2)
    mask[0, 1], mask[1, 1] = 0, 1  # same box: [0 1 0 0 / 1 0 0 1]
    assert cvat_mask_encode(mask) == ([1, 1, 2, 1, 2, 1], 1, 0, 4, 2)


def test_an_empty_mask_has_no_cvat_encoding() -> None:
    with pytest.raises(FormatError, match="empty"):
        cvat_mask_encode(np.zeros((4, 4), dtype=np.uint8))


def test_exported_masks_decode_with_datumaro_and_the_docs_to_exactly_the_masks() -> None:
    rng = np.random.default_rng(5)
    zoo = mask_zoo(rng, 37, 61)
    empty = np.zeros((37, 61), dtype=np.uint8)
    images = export_images(rng, [zoo[:4], zoo[4:] + [empty], []], size=(37, 61))
    text = build_cvat_xml(images, NAMES)
    root = ElementTree.fromstring(text)
    assert root.findtext("version") == "1.1"
    labels = root.findall("meta/task/labels/label")
    assert [label.findtext("name") for label in labels] == NAMES
    nodes = root.findall("image")
    assert [n.get("name") for n in nodes] == [i.file_name for i in images]
    assert [n.get("id") for n in nodes] == ["0", "1", "2"]
    for image, node in zip(images, nodes, strict=True):
        kept = [m for m in image.masks if rle_to_mask(m.rle, where="t", field="r").any()]
        shapes = node.findall("mask")
        assert len(shapes) == len(kept)  # the empty mask is left out
        for instance, shape in zip(kept, shapes, strict=True):
            expected = rle_to_mask(instance.rle, where="t", field="r")
            assert shape.get("label") == instance.category_name
            assert shape.get("source") == "auto"
            assert (cvat_mask_to_image(shape.attrib, node.attrib) == expected).all()
            left, top = int(shape.get("left", "")), int(shape.get("top", ""))
            width, height = int(shape.get("width", "")), int(shape.get("height", ""))
            runs = [int(v) for v in shape.get("rle", "").split(", ")]
            box = np.asarray(rle2mask_from_cvat_doc(runs, width, height)).reshape(height, width)
            assert (box == expected[top : top + height, left : left + width]).all()
            rows, cols = np.flatnonzero(expected.any(1)), np.flatnonzero(expected.any(0))
            assert (left, top, left + width - 1, top + height - 1) == (
                cols[0],
                rows[0],
                cols[-1],
                rows[-1],
            )  # the box is the inclusive bounding box
    back = parse_cvat_xml(text)
    for image, returned in zip(images, back, strict=True):
        kept = [m for m in image.masks if rle_to_mask(m.rle, where="t", field="r").any()]
        assert [a.rle for a in returned.annotations] == [m.rle for m in kept]
        assert returned.item_id is None and returned.file_name == image.file_name


CVAT_EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>42</id><name>segmon queue</name><size>2</size><mode>annotation</mode>
      <labels><label><name>disc</name><type>any</type><attributes /></label>
              <label><name>box</name><type>any</type><attributes /></label></labels>
    </task>
  </meta>
  <image id="0" name="queue/000101.jpg" width="8" height="6">
    <mask label="disc" source="manual" occluded="0" rle="0, 2, 1, 1" left="2" top="1" width="2" height="2" z_order="0">
      <attribute name="note">corrected</attribute>
    </mask>
    <polygon label="box" source="manual" occluded="0" points="4.00,2.00;8.00,2.00;8.00,6.00;4.00,6.00" z_order="0">
    </polygon>
    <box label="disc" source="manual" occluded="0" xtl="0.00" ytl="0.00" xbr="2.00" ybr="2.00" z_order="0">
    </box>
  </image>
  <image id="1" name="queue/000102.jpg" width="8" height="6">
  </image>
</annotations>
"""


def test_parse_reads_masks_and_polygons_of_a_cvat_export() -> None:
    first, second = parse_cvat_xml(CVAT_EXPORT)
    assert (first.file_name, first.width, first.height) == ("queue/000101.jpg", 8, 6)
    assert [a.category_name for a in first.annotations] == ["disc", "box"]
    mask = rle_to_mask(first.annotations[0].rle, where="t", field="r")
    expected = np.zeros((6, 8), dtype=np.uint8)
    expected[1, 2:4] = 1
    expected[2, 3] = 1
    assert (mask == expected).all()
    polygon = rle_to_mask(first.annotations[1].rle, where="t", field="r")
    reference = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects([[4.0, 2.0, 8.0, 2.0, 8.0, 6.0, 4.0, 6.0]], 6, 8))
    )
    assert (polygon == reference).all() and polygon.sum() == 16
    assert first.unsupported == ("box disc",)
    assert (second.annotations, second.skipped) == ((), False)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('rle="0, 2, 1, 1"', 'rle="0, 2, 1, 2"', "rle"),
        ('rle="0, 2, 1, 1"', 'rle="0, x"', "rle"),
        ('left="2"', 'left="7"', "left/top/width/height"),
        ('width="8" height="6">\n    <mask', 'width="8" height="-6">\n    <mask', "width/height"),
        ('points="4.00,2.00;', 'points="4.00;', "points"),
        ('points="4.00,2.00;', 'points="1e12,2.00;', "points"),
        ('<mask label="disc"', "<mask", "label"),
    ],
)
def test_a_malformed_cvat_file_names_the_image_and_the_field(
    old: str, new: str, field: str
) -> None:
    assert old in CVAT_EXPORT
    with pytest.raises(FormatError) as raised:
        parse_cvat_xml(CVAT_EXPORT.replace(old, new, 1))
    assert raised.value.field == field
    assert "queue/000101.jpg" in raised.value.where


def test_entities_video_tracks_and_other_versions_are_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotations>&e;</annotations>'
    with pytest.raises(FormatError, match="not readable XML"):
        parse_cvat_xml(bomb)
    with pytest.raises(FormatError, match="CVAT for video"):
        parse_cvat_xml("<annotations><track id='0' label='disc'/></annotations>")
    with pytest.raises(FormatError, match="expected '1.1'"):
        parse_cvat_xml("<annotations><version>2.0</version></annotations>")
    with pytest.raises(FormatError, match="expected <annotations>"):
        parse_cvat_xml("<dataset/>")


def test_a_mask_of_an_unknown_label_is_not_exported() -> None:
    images = export_images(np.random.default_rng(1), [mask_zoo(np.random.default_rng(1), 8, 8)])
    with pytest.raises(FormatError, match="is not one of"):
        build_cvat_xml(images, ["nothing"])
