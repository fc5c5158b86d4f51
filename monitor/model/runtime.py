"""Where and how models run: device auto-detection and input preparation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from detectors._typing import ImageArray
from monitor.errors import ConfigError, InvalidInputError


def resolve_device(device: str | None) -> torch.device:
    """Return ``device``, or CUDA when available and ``device`` is ``None``, else the CPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: unknown device 'tpu'; expected cpu, cuda or cuda:N
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; expected cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def check_image(image: ImageArray, index: int) -> None:
    """Raise :class:`InvalidInputError` unless ``image`` is ``uint8 (H, W, 3)``."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(
            f"image {index} must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
        )


def prepare_batch(images: Sequence[ImageArray], size: int, device: torch.device) -> torch.Tensor:
    """Resize ``uint8 (H, W, 3)`` images to a float ``(N, 3, size, size)`` batch in [0, 1].

    Host memory is pinned and copied asynchronously when ``device`` is CUDA; resizing is
    bilinear with antialiasing and runs on ``device``.

    Examples
    --------
    >>> img = np.full((10, 20, 3), 255, dtype=np.uint8)
    >>> batch = prepare_batch([img, img[:5]], 32, torch.device("cpu"))
    >>> tuple(batch.shape), float(batch.min()), float(batch.max())
    ((2, 3, 32, 32), 1.0, 1.0)
    """
    out = []
    for i, image in enumerate(images):
        check_image(image, i)
        host = torch.from_numpy(np.array(image, copy=True, order="C"))
        if device.type == "cuda":
            host = host.pin_memory()
        x = host.to(device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        out.append(x)
    if not out:
        raise ConfigError("prepare_batch needs at least one image")
    return torch.cat(out).clamp_(0.0, 1.0)
