"""instances decoding: input-size and RoI masks, thresholds, labels out of range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monitor.errors import InvalidInputError
from monitor.model.instances import InstancesOptions, decode_instances_outputs, paste_mask
from monitor.model.letterbox import place


def _outputs(n: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    boxes = torch.tensor([[0.0, 0.0, 32.0, 16.0], [16.0, 16.0, 48.0, 48.0]])[:n]
    labels = torch.tensor([1, 2])[:n]
    scores = torch.tensor([0.9, 0.3])[:n]
    masks = torch.zeros(n, 1, 64, 64)
    masks[0, 0, 0:16, 0:32] = 1.0
    if n > 1:
        masks[1, 0, 16:48, 16:48] = 0.8
    return boxes, labels, scores, masks


def test_input_size_masks_map_back_through_the_resize() -> None:
    placement = place((32, 128), (64, 64), "resize")  # y x2, x x1/2
    found = decode_instances_outputs(*_outputs(), placement, 3)
    assert [i.category_id for i in found] == [2, 3] and found[0].mask.shape == (32, 128)
    expected = np.zeros((32, 128), dtype=bool)
    expected[0:8, 0:64] = True
    assert np.array_equal(found[0].mask, expected)
    assert found[1].class_scores.tolist() == pytest.approx([0.35, 0.35, 0.3])


def test_thresholds_and_caps() -> None:
    placement = place((64, 64), (64, 64), "resize")
    assert len(decode_instances_outputs(*_outputs(), placement, 3, InstancesOptions(0.5))) == 1
    capped = decode_instances_outputs(*_outputs(), placement, 3, InstancesOptions(max_instances=1))
    assert [i.score for i in capped] == pytest.approx([0.9])
    high_mask = InstancesOptions(mask_threshold=0.9)
    assert len(decode_instances_outputs(*_outputs(), placement, 3, high_mask)) == 1


def test_roi_masks_are_pasted_into_the_box() -> None:
    roi = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # the lower half of the box
    mask = paste_mask(
        roi, torch.tensor([8.0, 8.0, 24.0, 40.0]), place((64, 64), (64, 64), "resize")
    )
    expected = np.zeros((64, 64), dtype=bool)
    expected[24:40, 8:24] = True
    assert np.array_equal(mask, expected)
    assert not paste_mask(
        roi, torch.tensor([8.0, 8.0, 8.0, 40.0]), place((64, 64), (64, 64), "resize")
    ).any()


def test_labels_outside_the_classes_and_bad_shapes_are_refused() -> None:
    placement = place((64, 64), (64, 64), "resize")
    with pytest.raises(InvalidInputError, match="predicted label 2, but it has 2 classes"):
        decode_instances_outputs(*_outputs(), placement, 2)
    boxes, labels, scores, masks = _outputs()
    with pytest.raises(InvalidInputError, match=r"boxes \(N, 4\)"):
        decode_instances_outputs(boxes, labels[:1], scores, masks, placement, 3)
