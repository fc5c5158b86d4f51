"""Any bytes an annotation tool (or an attacker) returns give a result or a FormatError."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampling.formats.cvat import parse_cvat_xml
from sampling.formats.labelstudio import brush_decode, brush_decode_values, brush_encode
from sampling.formats.mask_codec import rle_to_mask
from sampling.formats.records import FormatError, ReturnedImage
from tests.sampling.formats.test_cvat import CVAT_EXPORT

_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.lists(st.integers(0, 255), max_size=64))
def test_random_brush_bytes_decode_or_raise_format_error(rle: list[int]) -> None:
    try:
        values = brush_decode_values(rle)
    except FormatError:
        return
    assert values.dtype == np.uint8


@_SETTINGS
@given(st.integers(0, 30), st.integers(0, 255))
def test_a_damaged_brush_rle_is_refused_or_decodes_to_the_right_size(cut: int, byte: int) -> None:
    mask = np.zeros((9, 11), dtype=np.uint8)
    mask[2:7, 3:9] = 1
    rle = brush_encode(mask)
    damaged = rle[: len(rle) - cut % len(rle)] if cut else list(rle)
    damaged[min(7, len(damaged) - 1)] = byte
    try:
        back = brush_decode(damaged, 9, 11)
    except FormatError:
        return
    assert back.shape == (9, 11)


@_SETTINGS
@given(st.text(max_size=40))
def test_random_coco_counts_decode_or_raise_format_error(counts: str) -> None:
    try:
        mask = rle_to_mask({"size": [5, 7], "counts": counts}, where="a", field="rle")
    except FormatError:
        return
    assert mask.shape == (5, 7)


@_SETTINGS
@given(st.integers(0, len(CVAT_EXPORT) - 1), st.text(max_size=8))
def test_a_mangled_cvat_file_parses_or_raises_format_error(at: int, text: str) -> None:
    mangled = CVAT_EXPORT[:at] + text + CVAT_EXPORT[at + len(text) :]
    try:
        images = parse_cvat_xml(mangled)
    except FormatError:
        return
    assert all(isinstance(image, ReturnedImage) for image in images)
