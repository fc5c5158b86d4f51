"""Images: decode and read them, or say why they cannot be used.

The one image reader of segmon: every job that needs pixels (embed, shadow, image
properties, evaluate with a model) reads through :func:`read_image`, which never raises
for bad data but returns an :class:`ImageProblem` whose ``reason`` is a quarantine
reason, so one bad file cannot stop a job.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import fsspec
import numpy as np
from PIL import Image, UnidentifiedImageError

from detectors._typing import ImageArray
from monitor.errors import QuarantineReason

__all__ = ["ImageProblem", "read_image", "rgb_from_bytes"]


@dataclass(frozen=True)
class ImageProblem:
    """Why an image could not be used (``reason`` is a quarantine reason)."""

    reason: QuarantineReason
    detail: str


def rgb_from_bytes(data: bytes) -> ImageArray:
    """Decode an encoded image (PNG, JPEG, ...) as ``uint8`` RGB ``(h, w, 3)``.

    Raises whatever PIL raises for data that is not an image (``UnidentifiedImageError``,
    ``OSError``, ...).
    """
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_image(
    uri: str, height: int | None = None, width: int | None = None
) -> ImageArray | ImageProblem:
    """Read an image as ``uint8`` RGB ``(h, w, 3)``, or say why it cannot be used.

    Parameters
    ----------
    uri
        A local path or any fsspec URL.
    height, width
        The size the database holds for it; another size is a problem. ``None`` (both)
        accepts any size.

    Returns
    -------
    numpy.ndarray or ImageProblem
        The pixels, or an ``image_missing``, ``image_unreadable`` or
        ``image_size_mismatch`` problem naming the file.

    Examples
    --------
    >>> read_image("/nonexistent/x.png").reason.value
    'image_missing'
    """
    try:
        with fsspec.open(uri, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        return ImageProblem(QuarantineReason.IMAGE_MISSING, f"image {uri!r}: {exc}")
    try:
        pixels = rgb_from_bytes(data)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {uri!r}: {exc}")
    if height is not None and width is not None and pixels.shape[:2] != (height, width):
        return ImageProblem(
            QuarantineReason.IMAGE_SIZE_MISMATCH,
            f"image {uri!r} is {pixels.shape[1]}x{pixels.shape[0]}, stored as {width}x{height}",
        )
    return pixels
