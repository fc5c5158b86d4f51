"""Array type aliases, defined once and imported everywhere (detectors, sampling, monitor).

Pure typing: importing this module costs numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating[Any]]
"""A float array of any precision (detectors convert to the precision they need)."""

Float64Array = npt.NDArray[np.float64]
"""A float64 array: statistics, IoU matrices, event counts as floats."""

Float32Array = npt.NDArray[np.float32]
"""A float32 array: embeddings and model outputs."""

Int64Array = npt.NDArray[np.int64]
"""An int64 array: counts, codes, permutation indices."""

IntpArray = npt.NDArray[np.intp]
"""An index array of the platform's pointer width (what ``argsort`` returns)."""

BoolArray = npt.NDArray[np.bool_]
"""A boolean array."""

ImageArray = npt.NDArray[np.uint8]
"""An RGB image, ``uint8`` of shape ``(H, W, 3)``."""

MaskArray = npt.NDArray[np.bool_]
"""An instance mask, ``bool`` of its image's ``(H, W)``."""

__all__ = [
    "BoolArray",
    "Float32Array",
    "Float64Array",
    "FloatArray",
    "ImageArray",
    "Int64Array",
    "IntpArray",
    "MaskArray",
]
