"""Where an image sits inside a model's input, and sampling maps back to the image.

A model sees each image resized into its input, either stretched to fill it
(``resize``) or scaled to fit with its aspect kept and the rest padded (``letterbox``,
the YOLO convention: centered, grey 114). A :class:`Placement` records that geometry;
:func:`axis_weights` turns it into bilinear sampling matrices, so a map the model made
in input space (a mask, a prototype combination, a box-relative RoI mask) is sampled at
each image pixel's center in one step: ``Wy @ map @ Wx.T``. Sampling follows
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``: pixel
centers at ``i + 0.5``, coordinates clamped at the borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

ResizeMode = Literal["letterbox", "resize", "native"]
"""``native``: the model takes each image at its own size (no resizing)."""


@dataclass(frozen=True)
class Placement:
    """How one image maps into the model input.

    Attributes
    ----------
    image_size
        ``(H, W)`` of the image.
    input_size
        ``(h, w)`` of the model input.
    scale
        ``(sy, sx)``: input pixels per image pixel.
    offset
        ``(top, left)``: padding before the image, in input pixels.
    resized
        ``(h, w)`` the image is resized to before padding.
    """

    image_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[int, int]
    resized: tuple[int, int]

    def to_input(self, y: float, x: float) -> tuple[float, float]:
        """Map an image point (pixel-edge coordinates) into the input."""
        return y * self.scale[0] + self.offset[0], x * self.scale[1] + self.offset[1]

    def boxes_to_image(self, boxes: Tensor) -> Tensor:
        """Map ``(n, 4)`` ``x1, y1, x2, y2`` input boxes to image coordinates (clipped)."""
        (sy, sx), (top, left) = self.scale, self.offset
        height, width = self.image_size
        out = boxes.float().clone()
        out[:, 0::2] = ((out[:, 0::2] - left) / sx).clamp(0.0, float(width))
        out[:, 1::2] = ((out[:, 1::2] - top) / sy).clamp(0.0, float(height))
        return out


def place(image_size: tuple[int, int], input_size: tuple[int, int], mode: ResizeMode) -> Placement:
    """Return the placement of an image of ``image_size`` in an input of ``input_size``.

    ``letterbox`` scales by ``min(h / H, w / W)``, rounds the resized size and centers
    it (the odd pixel of padding goes after the image, as Ultralytics' ``LetterBox``);
    ``resize`` stretches to fill; ``native`` keeps the image as it is (``input_size``
    is ignored).

    Examples
    --------
    >>> place((160, 320), (640, 640), "letterbox")
    Placement(image_size=(160, 320), input_size=(640, 640), scale=(2.0, 2.0), offset=(160, 0), resized=(320, 640))
    >>> place((100, 50), (64, 64), "resize").scale
    (0.64, 1.28)
    """
    height, width = image_size
    if mode == "native":
        return Placement(image_size, image_size, (1.0, 1.0), (0, 0), image_size)
    in_h, in_w = input_size
    if mode == "resize":
        return Placement(image_size, input_size, (in_h / height, in_w / width), (0, 0), input_size)
    ratio = min(in_h / height, in_w / width)
    new_h, new_w = max(1, round(height * ratio)), max(1, round(width * ratio))
    top, left = (in_h - new_h) // 2, (in_w - new_w) // 2
    return Placement(
        image_size, input_size, (new_h / height, new_w / width), (top, left), (new_h, new_w)
    )


def _taps(
    positions: Tensor, source_length: int, step: float, start: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Return the two source pixels each output pixel reads, and the second's weight."""
    center = (positions.double() + 0.5) * step + start - 0.5
    center = center.clamp(min=0.0, max=float(source_length - 1))
    low = center.floor().long().clamp(max=source_length - 1)
    high = (low + 1).clamp(max=source_length - 1)
    return low, high, (center - low.double()).float()


def _dense(low: Tensor, high: Tensor, frac: Tensor, first: int, width: int) -> Tensor:
    weights = torch.zeros(low.numel(), width)
    rows = torch.arange(low.numel())
    weights.index_put_((rows, low - first), 1.0 - frac, accumulate=True)
    weights.index_put_((rows, high - first), frac, accumulate=True)
    return weights


def axis_weights(positions: Tensor, source_length: int, step: float, start: float) -> Tensor:
    """Bilinear weights ``(len(positions), source_length)`` along one axis.

    Output pixel ``i`` (its center ``i + 0.5``) samples the source at coordinate
    ``(i + 0.5) * step + start`` (source pixel-edge coordinates), clamped to the
    source like ``interpolate(..., align_corners=False)``.

    Parameters
    ----------
    positions
        Output pixel indices.
    source_length
        Pixels of the source along this axis.
    step
        Source pixels per output pixel.
    start
        Source coordinate of output coordinate 0.

    Examples
    --------
    >>> axis_weights(torch.arange(4), 2, 0.5, 0.0)
    tensor([[1.0000, 0.0000],
            [0.7500, 0.2500],
            [0.2500, 0.7500],
            [0.0000, 1.0000]])
    """
    low, high, frac = _taps(positions, source_length, step, start)
    return _dense(low, high, frac, 0, source_length)


def sample_region(
    source: Tensor,
    rows: Tensor,
    cols: Tensor,
    steps: tuple[float, float],
    starts: tuple[float, float],
) -> Tensor:
    """Sample ``(k, h, w)`` source maps at the image pixels ``rows`` x ``cols``.

    Only the window of the source that the samples read is touched, so sampling a box
    costs the box, not the map.

    Parameters
    ----------
    source
        ``(k, h, w)`` float maps.
    rows, cols
        Image pixel indices to sample (a rectangle: every row with every column).
    steps, starts
        Per axis ``(y, x)``: source pixels per image pixel and the source coordinate of
        image coordinate 0 (see :func:`axis_weights`).

    Returns
    -------
    Tensor
        ``(k, len(rows), len(cols))`` float32.

    Examples
    --------
    >>> src = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    >>> sample_region(src, torch.arange(2), torch.arange(4), (1.0, 0.5), (0.0, 0.0))
    tensor([[[0.0000, 0.2500, 0.7500, 1.0000],
             [2.0000, 2.2500, 2.7500, 3.0000]]])
    """
    if rows.numel() == 0 or cols.numel() == 0:
        return torch.zeros((source.shape[0], rows.numel(), cols.numel()))
    ty = _taps(rows, source.shape[-2], steps[0], starts[0])
    tx = _taps(cols, source.shape[-1], steps[1], starts[1])
    y0, y1 = int(ty[0].min()), int(ty[1].max()) + 1
    x0, x1 = int(tx[0].min()), int(tx[1].max()) + 1
    wy = _dense(*ty, y0, y1 - y0)
    wx = _dense(*tx, x0, x1 - x0)
    window = source[:, y0:y1, x0:x1].float()
    return torch.matmul(torch.matmul(wy, window), wx.T)  # (k, rows, cols)


def input_pixels_to_image(
    placement: Placement, y0: float, y1: float, x0: float, x1: float
) -> tuple[Tensor, Tensor]:
    """Return the image rows and columns whose centers fall in an input-space rectangle.

    The rectangle is ``[y0, y1) x [x0, x1)`` in input pixel-edge coordinates.

    Examples
    --------
    >>> p = place((160, 320), (640, 640), "letterbox")
    >>> rows, cols = input_pixels_to_image(p, 160.0, 168.0, 0.0, 4.0)
    >>> rows.tolist(), cols.tolist()
    ([0, 1, 2, 3], [0, 1])
    """
    height, width = placement.image_size
    (sy, sx), (top, left) = placement.scale, placement.offset
    ys = torch.arange(height, dtype=torch.float64)
    xs = torch.arange(width, dtype=torch.float64)
    cy, cx = (ys + 0.5) * sy + top, (xs + 0.5) * sx + left
    rows = torch.nonzero((cy >= y0) & (cy < y1)).flatten()
    cols = torch.nonzero((cx >= x0) & (cx < x1)).flatten()
    return rows, cols
