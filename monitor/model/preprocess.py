"""Declared preprocessing of exported models: size, letterbox or resize, channels, scaling.

The built-in network takes RGB in [0, 1] stretched to its square input
(:func:`~monitor.model.runtime.prepare_batch`); a model exported elsewhere declares what
it was trained on (:class:`Preprocessing`, from the ``models.*`` config), and
:func:`prepare_inputs` builds its input batch, returning where each image landed
(:class:`~monitor.model.letterbox.Placement`) so outputs map back to each image's own
size. On CUDA host images are pinned and copied asynchronously; resizing runs on the
device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from detectors._typing import ImageArray
from monitor.errors import InvalidInputError
from monitor.model.letterbox import Placement, ResizeMode, place
from monitor.model.runtime import check_image


@dataclass(frozen=True)
class Preprocessing:
    """How images become a model's input.

    Parameters
    ----------
    input_size
        ``(h, w)`` of the input; ignored when ``mode`` is ``native``.
    mode
        ``letterbox`` (keep aspect, pad), ``resize`` (stretch) or ``native`` (as is).
    channels
        Channel order the model expects.
    pixel_range
        ``0-1`` divides pixels by 255 before ``mean`` / ``std``; ``0-255`` keeps them.
    mean, std
        Per channel (in the model's channel order), in units of ``pixel_range``.
    pad_value
        Grey level (0-255) of letterbox padding.
    """

    input_size: tuple[int, int]
    mode: ResizeMode = "resize"
    channels: Literal["RGB", "BGR"] = "RGB"
    pixel_range: Literal["0-1", "0-255"] = "0-1"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: int = 114

    def describe(self) -> dict[str, object]:
        """Return the settings as JSON-ready values."""
        return {
            "input_size": None if self.mode == "native" else list(self.input_size),
            "mode": self.mode,
            "channels": self.channels,
            "pixel_range": self.pixel_range,
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _to_input(
    image: ImageArray, placement: Placement, prep: Preprocessing, device: torch.device
) -> Tensor:
    host = torch.from_numpy(np.array(image, copy=True, order="C"))
    if device.type == "cuda":
        host = host.pin_memory()
    x = host.to(device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float()
    if tuple(x.shape[-2:]) != placement.resized:
        x = F.interpolate(
            x, size=placement.resized, mode="bilinear", align_corners=False, antialias=True
        ).clamp_(0.0, 255.0)
    if placement.resized != placement.input_size:
        canvas = torch.full((1, 3, *placement.input_size), float(prep.pad_value), device=device)
        top, left = placement.offset
        canvas[:, :, top : top + placement.resized[0], left : left + placement.resized[1]] = x
        x = canvas
    return x


def prepare_inputs(
    images: Sequence[ImageArray], prep: Preprocessing, device: torch.device
) -> tuple[Tensor, list[Placement]]:
    """Build the ``(N, 3, h, w)`` float input of ``uint8 (H, W, 3)`` RGB images.

    Returns
    -------
    tuple
        The batch on ``device`` and each image's :class:`Placement`.

    Raises
    ------
    InvalidInputError
        For an image that is not ``uint8 (H, W, 3)``, or ``native`` images of
        different sizes in one batch.

    Examples
    --------
    >>> img = np.zeros((2, 4, 3), dtype=np.uint8); img[..., 0] = 255
    >>> prep = Preprocessing((4, 4), "letterbox", channels="BGR")
    >>> batch, (where,) = prepare_inputs([img], prep, torch.device("cpu"))
    >>> batch[0, :, :, 0].tolist(), where.offset
    ([[0.447..., 0.0, 0.0, 0.447...], [0.447..., 0.0, 0.0, 0.447...], [0.447..., 1.0, 1.0, 0.447...]], (1, 0))
    """
    if not images:
        raise InvalidInputError("prepare_inputs needs at least one image")
    placements = []
    parts = []
    for i, image in enumerate(images):
        check_image(image, i)
        placement = place(image.shape[:2], prep.input_size, prep.mode)
        placements.append(placement)
        parts.append(_to_input(image, placement, prep, device))
    sizes = {tuple(p.shape[-2:]) for p in parts}
    if len(sizes) != 1:
        raise InvalidInputError(
            f"images of sizes {sorted(sizes)} cannot share a batch at their native size"
        )
    batch = torch.cat(parts)
    if prep.channels == "BGR":
        batch = batch.flip(1)
    if prep.pixel_range == "0-1":
        batch = batch / 255.0
    if prep.mean != (0.0, 0.0, 0.0) or prep.std != (1.0, 1.0, 1.0):
        mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)
        batch = (batch - mean) / std
    return batch.contiguous(), placements
