"""Declared preprocessing: channel order, scaling, normalisation, letterbox padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monitor.errors import InvalidInputError
from monitor.model.preprocess import Preprocessing, prepare_inputs

CPU = torch.device("cpu")


def _image(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


def test_rgb_and_bgr_scaling_and_normalisation() -> None:
    image = _image(4, 4, (200, 100, 50))
    rgb, _ = prepare_inputs([image], Preprocessing((4, 4)), CPU)
    assert rgb[0, :, 0, 0].tolist() == pytest.approx([200 / 255, 100 / 255, 50 / 255])
    bgr, _ = prepare_inputs([image], Preprocessing((4, 4), channels="BGR"), CPU)
    assert bgr[0, :, 0, 0].tolist() == pytest.approx([50 / 255, 100 / 255, 200 / 255])
    raw = Preprocessing((4, 4), pixel_range="0-255", mean=(100, 100, 50), std=(2, 4, 1))
    batch, _ = prepare_inputs([image], raw, CPU)
    assert batch[0, :, 0, 0].tolist() == pytest.approx([50.0, 0.0, 0.0])
    imagenet = Preprocessing((4, 4), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    batch, _ = prepare_inputs([image], imagenet, CPU)
    assert batch[0, 0, 0, 0].item() == pytest.approx((200 / 255 - 0.485) / 0.229, rel=1e-5)


def test_letterbox_pads_with_grey_and_reports_the_placement() -> None:
    tall = _image(8, 4, (255, 255, 255))
    batch, (placement,) = prepare_inputs([tall], Preprocessing((8, 8), "letterbox"), CPU)
    assert placement.offset == (0, 2) and placement.resized == (8, 4)
    row = batch[0, 0, 0].tolist()
    assert row == pytest.approx([114 / 255] * 2 + [1.0] * 4 + [114 / 255] * 2)
    batch, _ = prepare_inputs([tall], Preprocessing((8, 8), "letterbox", pad_value=0), CPU)
    assert batch[0, 0, 0, 0].item() == 0.0


def test_native_images_batch_only_when_they_share_a_size() -> None:
    prep = Preprocessing((64, 64), "native")
    batch, placements = prepare_inputs([_image(5, 7, (1, 2, 3))] * 2, prep, CPU)
    assert tuple(batch.shape) == (2, 3, 5, 7) and placements[0].scale == (1.0, 1.0)
    with pytest.raises(InvalidInputError, match="cannot share a batch"):
        prepare_inputs([_image(5, 7, (1, 2, 3)), _image(6, 7, (1, 2, 3))], prep, CPU)


def test_bad_images_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="image 0 must be uint8"):
        prepare_inputs([np.zeros((4, 4), dtype=np.uint8)], Preprocessing((4, 4)), CPU)
    with pytest.raises(InvalidInputError, match="at least one image"):
        prepare_inputs([], Preprocessing((4, 4)), CPU)
