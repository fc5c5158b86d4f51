"""NMS: what it keeps obeys the greedy rule, per class, on seeded random boxes."""

from __future__ import annotations

import pytest
import torch

from monitor.errors import InvalidInputError
from monitor.model.nms import box_iou, nms


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 80
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, 3, (n,), generator=g)
    return torch.cat([xy, xy + wh], dim=1), scores, classes


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_nms_keeps_exactly_the_greedy_survivors(seed: int, threshold: float) -> None:
    boxes, scores, classes = _random_boxes(200, seed)
    keep = nms(boxes, scores, threshold, classes)
    kept = set(keep.tolist())
    assert scores[keep].tolist() == sorted(scores[keep].tolist(), reverse=True)
    for i in range(len(boxes)):
        stronger = [
            j for j in kept if classes[j] == classes[i] and scores[j] > scores[i] and j != i
        ]
        overlaps = box_iou(boxes[i], boxes[stronger]) > threshold if stronger else torch.tensor([])
        # kept iff no stronger kept box of its class overlaps it by more than the threshold
        assert (i in kept) == (not bool(overlaps.any())), i


def test_classes_never_suppress_each_other_and_max_keep_stops_early() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, torch.tensor([0, 1, 2])).tolist() == [0, 1, 2]
    assert nms(boxes, scores, 0.5, torch.tensor([0, 1, 2]), max_keep=2).tolist() == [0, 1]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="iou_threshold must be in"):
        nms(torch.zeros(1, 4), torch.zeros(1), 0.0)
    with pytest.raises(InvalidInputError, match=r"boxes \(n, 4\)"):
        nms(torch.zeros(2, 5), torch.zeros(2), 0.5)
