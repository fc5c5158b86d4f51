"""yolo-seg decoding: layouts, thresholds and NMS, masks assembled through the letterbox."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monitor.errors import InvalidInputError
from monitor.model.letterbox import place
from monitor.model.yolo import (
    YoloLayout,
    YoloOptions,
    assemble_mask,
    decode_yolo_seg,
    select_detections,
    yolo_layout,
)


@pytest.mark.parametrize(
    ("shape", "m", "classes", "expected"),
    [
        ((1, 116, 8400), 32, 80, YoloLayout(True, False, 80, 32)),  # YOLOv8-seg
        ((1, 116, 8400), 32, None, YoloLayout(True, False, 80, 32)),
        ((1, 25200, 117), 32, 80, YoloLayout(False, True, 80, 32)),  # YOLOv5-seg
        ((1, 25200, 117), 32, None, YoloLayout(False, True, 80, 32)),
        ((1, 8400, 116), 32, 80, YoloLayout(False, False, 80, 32)),  # transposed v8
        ((2, 38, 10), 32, 2, YoloLayout(True, False, 2, 32)),  # fewer anchors than features
    ],
)
def test_layouts_are_told_apart(
    shape: tuple[int, int, int], m: int, classes: int | None, expected: YoloLayout
) -> None:
    assert yolo_layout(shape, m, classes) == expected


def test_layouts_that_fit_nothing_name_what_was_seen() -> None:
    with pytest.raises(InvalidInputError, match=r"\(1, 20, 100\) leave -16 classes"):
        yolo_layout((1, 20, 100), 32)
    with pytest.raises(InvalidInputError, match="must be"):
        yolo_layout((116, 8400), 32)


def test_objectness_multiplies_class_scores() -> None:
    # YOLOv5 rows: cx cy w h obj, 2 classes, 1 coefficient
    rows = torch.tensor(
        [[10.0, 10, 4, 4, 0.5, 0.9, 0.1, 1.0], [30.0, 30, 4, 4, 0.9, 0.2, 0.4, 2.0]]
    )
    kept = select_detections(rows, YoloLayout(False, True, 2, 1), YoloOptions())
    assert kept.scores.tolist() == pytest.approx([0.45, 0.36])
    assert kept.labels.tolist() == [0, 1]
    assert kept.class_scores.sum(dim=1).tolist() == pytest.approx([1.0, 1.0])
    assert kept.coefficients.tolist() == [[1.0], [2.0]]
    assert kept.boxes[1].tolist() == [28.0, 28.0, 32.0, 32.0]


def test_max_instances_and_candidates_cap_what_is_kept() -> None:
    n = 50
    centers = torch.arange(n, dtype=torch.float32) * 10 + 5
    rows = torch.stack(
        [
            centers,
            centers,
            torch.full((n,), 4.0),
            torch.full((n,), 4.0),
            torch.linspace(0.3, 0.99, n),
            torch.zeros(n),
        ],
        dim=1,
    )
    layout = YoloLayout(False, False, 1, 1)
    assert select_detections(rows, layout, YoloOptions(max_instances=7)).boxes.shape[0] == 7
    few = select_detections(rows, layout, YoloOptions(max_candidates=3))
    assert few.scores.tolist() == pytest.approx(sorted(rows[-3:, 4].tolist(), reverse=True))


def test_masks_are_cropped_to_their_box_and_cut_at_the_threshold() -> None:
    protos = torch.full((1, 16, 16), -4.0)
    protos[0, 4:12] = 4.0  # a band of rows, logit 4 (p = 0.982), -4 elsewhere
    placement = place((64, 64), (64, 64), "letterbox")
    box = torch.tensor([8.0, 0.0, 40.0, 64.0])  # x1 y1 x2 y2
    mask = assemble_mask(torch.ones(1), protos, box, placement)
    expected = np.zeros((64, 64), dtype=bool)
    expected[16:48, 8:40] = True
    assert np.array_equal(mask, expected)
    # at mask_threshold 0.99 the logit-4 band is below the cut: nothing
    assert not assemble_mask(torch.ones(1), protos, box, placement, 0.99).any()
    # a box entirely in the letterbox band selects no image pixel
    banded = place((32, 64), (64, 64), "letterbox")
    assert not assemble_mask(torch.ones(1), protos, torch.tensor([0.0, 0, 64, 16]), banded).any()


def test_decode_drops_empty_masks_and_checks_prototypes() -> None:
    layout = YoloLayout(True, False, 1, 1)
    det = torch.tensor([[32.0], [32.0], [16.0], [16.0], [0.9], [1.0]])  # one anchor
    protos = torch.full((1, 16, 16), -5.0)
    assert decode_yolo_seg(det, protos, layout, place((64, 64), (64, 64), "resize")) == []
    with pytest.raises(InvalidInputError, match=r"\(M=1, h, w\)"):
        decode_yolo_seg(det, torch.zeros(2, 16, 16), layout, place((64, 64), (64, 64), "resize"))
