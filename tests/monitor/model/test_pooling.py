"""Mask pooling over a feature map that covers the whole (letterboxed) input."""

from __future__ import annotations

import numpy as np
import torch

from monitor.model.letterbox import place
from monitor.model.pooling import cell_coverage, pool_placed


def test_coverage_is_the_share_of_each_cell_the_mask_covers() -> None:
    placement = place((32, 64), (64, 64), "letterbox")  # 16 px bands above and below
    full = np.ones((32, 64), dtype=bool)
    cover = cell_coverage([full], placement, (4, 4))[0]  # 16 px cells
    assert cover[:, 0].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert float(cover.sum()) * 16 * 16 == 32 * 64  # total area, in input pixels
    tiny = np.zeros((32, 64), dtype=bool)
    tiny[5, 7] = True  # one pixel: 1/256 of a cell
    assert float(cell_coverage([tiny], placement, (4, 4)).sum()) == 1 / 256


def test_padding_never_counts_and_masks_get_their_own_vectors() -> None:
    placement = place((32, 64), (64, 64), "letterbox")
    feature = torch.full((1, 4, 4), 100.0)  # the padding rows hold 100
    feature[0, 1:3] = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    left = np.zeros((32, 64), dtype=bool)
    left[:, :16] = True
    image, inst = pool_placed(feature, [left, np.zeros((32, 64), dtype=bool)], placement)
    assert image.tolist() == [4.5] and inst.tolist() == [[3.0], [4.5]]
    image, none = pool_placed(feature, [], placement)
    assert none.shape == (0, 1)
