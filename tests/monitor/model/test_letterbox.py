"""Letterbox geometry and one-step bilinear sampling, against torch's own interpolate."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from monitor.model.letterbox import axis_weights, input_pixels_to_image, place, sample_region


@pytest.mark.parametrize(
    ("image", "size", "resized", "offset"),
    [
        ((480, 640), (640, 640), (480, 640), (80, 0)),  # landscape: bands above and below
        ((640, 480), (640, 640), (640, 480), (0, 80)),  # portrait: bands left and right
        ((1080, 1920), (640, 640), (360, 640), (140, 0)),
        ((101, 100), (64, 64), (64, 63), (0, 0)),  # the odd pixel of padding goes after
        ((10, 10), (64, 32), (32, 32), (16, 0)),
    ],
)
def test_letterbox_keeps_aspect_and_centers(
    image: tuple[int, int], size: tuple[int, int], resized: tuple[int, int], offset: tuple[int, int]
) -> None:
    p = place(image, size, "letterbox")
    assert (p.resized, p.offset, p.input_size) == (resized, offset, size)
    assert p.scale == (resized[0] / image[0], resized[1] / image[1])
    # the image's far corner lands at the end of the resized area
    assert p.to_input(*image) == (offset[0] + resized[0], offset[1] + resized[1])


def test_resize_and_native_placements() -> None:
    stretched = place((100, 50), (64, 64), "resize")
    assert (stretched.offset, stretched.resized, stretched.scale) == (
        (0, 0),
        (64, 64),
        (0.64, 1.28),
    )
    native = place((100, 50), (64, 64), "native")
    assert (native.input_size, native.scale) == ((100, 50), (1.0, 1.0))


def test_boxes_map_back_to_image_coordinates_clipped() -> None:
    p = place((160, 320), (640, 640), "letterbox")  # scale 2, 160 px bands
    boxes = torch.tensor([[0.0, 160.0, 64.0, 200.0], [600.0, 100.0, 700.0, 500.0]])
    assert p.boxes_to_image(boxes).tolist() == [[0.0, 0.0, 32.0, 20.0], [300.0, 0.0, 320.0, 160.0]]


@pytest.mark.parametrize(("source", "out"), [(8, 32), (8, 20), (16, 16), (32, 8), (7, 3)])
def test_axis_weights_sample_like_bilinear_interpolate(source: int, out: int) -> None:
    g = torch.Generator().manual_seed(source * 100 + out)
    maps = torch.randn(2, source, source + 3, generator=g)
    expected = F.interpolate(maps[None], size=(out, out + 1), mode="bilinear", align_corners=False)[
        0
    ]
    rows, cols = torch.arange(out), torch.arange(out + 1)
    got = sample_region(maps, rows, cols, (source / out, (source + 3) / (out + 1)), (0.0, 0.0))
    assert torch.allclose(got, expected, atol=1e-5)
    weights = axis_weights(rows, source, source / out, 0.0)
    assert torch.allclose(weights.sum(dim=1), torch.ones(out))


def test_input_rectangles_select_image_pixels_by_their_centers() -> None:
    p = place((64, 128), (64, 64), "letterbox")  # scale 1/2, 16 px bands
    rows, cols = input_pixels_to_image(p, 16.0, 20.0, 4.0, 5.0)
    assert rows.tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and cols.tolist() == [8, 9]
    empty_rows, _ = input_pixels_to_image(p, 0.0, 16.0, 0.0, 64.0)  # inside the band
    assert empty_rows.numel() == 0
