"""Pooling a feature map inside image masks, wherever the image sits in the model input.

An exported model's feature map covers its whole input, of which a letterboxed image
fills only a part. :func:`cell_coverage` computes, per feature cell, the fraction of the
cell a mask covers, exactly and separably (``Ay @ mask @ Ax.T``, with ``A`` the overlap
of each image pixel's extent with each cell's along one axis), so padding never counts
and a mask smaller than a cell still gets its own vector. :func:`pool_placed` averages
the features with those weights: the image vector over the image's own area, one
vector per mask, an empty mask getting the image vector (as
:func:`~monitor.model.decode.pool_embeddings` does for the built-in network).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from detectors._typing import Float32Array, MaskArray
from monitor.model.letterbox import Placement


def overlap_matrix(n_cells: int, cell: float, n_pixels: int, pixel: float, offset: float) -> Tensor:
    """Fraction of each cell ``[i cell, (i+1) cell)`` covered by each pixel's extent.

    Pixel ``p`` spans ``[offset + p pixel, offset + (p+1) pixel)`` (input coordinates).

    Examples
    --------
    >>> overlap_matrix(2, 4.0, 4, 2.0, 1.0)
    tensor([[0.5000, 0.2500, 0.0000, 0.0000],
            [0.0000, 0.2500, 0.5000, 0.2500]])
    """
    starts = offset + torch.arange(n_pixels, dtype=torch.float64) * pixel
    cells = torch.arange(n_cells, dtype=torch.float64) * cell
    low = torch.maximum(cells[:, None], starts[None, :])
    high = torch.minimum(cells[:, None] + cell, starts[None, :] + pixel)
    return ((high - low).clamp(min=0.0) / cell).float()


def cell_coverage(
    masks: Sequence[MaskArray], placement: Placement, grid: tuple[int, int]
) -> Tensor:
    """Return ``(k, h, w)``: the fraction of each feature cell each mask covers.

    ``grid`` is the feature map's ``(h, w)``; it spans the whole model input.

    Examples
    --------
    >>> from monitor.model.letterbox import place
    >>> full = np.ones((2, 4), dtype=bool)
    >>> cell_coverage([full], place((2, 4), (4, 4), "letterbox"), (2, 2))
    tensor([[[0.5000, 0.5000],
             [0.5000, 0.5000]]])
    """
    height, width = placement.image_size
    (sy, sx), (top, left) = placement.scale, placement.offset
    in_h, in_w = placement.input_size
    ay = overlap_matrix(grid[0], in_h / grid[0], height, sy, float(top))
    ax = overlap_matrix(grid[1], in_w / grid[1], width, sx, float(left))
    if not masks:
        return torch.zeros((0, *grid))
    stack = torch.from_numpy(np.stack([np.asarray(m, dtype=np.float32) for m in masks]))
    return torch.einsum("iy,kyx,jx->kij", ay, stack, ax)


def pool_placed(
    feature: Tensor, masks: Sequence[MaskArray], placement: Placement
) -> tuple[Float32Array, Float32Array]:
    """Pool one image's ``(D, h, w)`` feature map over the image and inside each mask.

    Returns
    -------
    tuple
        ``image (D,)`` and ``instances (len(masks), D)``, float32.

    Examples
    --------
    >>> from monitor.model.letterbox import place
    >>> feature = torch.arange(8.0).view(2, 2, 2)
    >>> left = np.zeros((2, 4), dtype=bool); left[:, :2] = True
    >>> image, inst = pool_placed(feature, [left], place((2, 4), (4, 4), "letterbox"))
    >>> image.tolist(), inst.tolist()
    ([1.5, 5.5], [[1.0, 5.0]])
    """
    feature = feature.float()
    dim = feature.shape[0]
    grid = (int(feature.shape[1]), int(feature.shape[2]))
    full = np.ones(placement.image_size, dtype=np.bool_)
    weights = cell_coverage([full, *masks], placement, grid)
    total = weights.sum(dim=(1, 2))
    pooled = torch.einsum("khw,dhw->kd", weights, feature) / total.clamp(min=1e-12)[:, None]
    image = pooled[0]
    if not masks:
        return image.numpy().astype(np.float32), np.zeros((0, dim), dtype=np.float32)
    inst = torch.where((total[1:] > 0)[:, None], pooled[1:], image[None, :])
    return image.numpy().astype(np.float32), inst.numpy().astype(np.float32)
