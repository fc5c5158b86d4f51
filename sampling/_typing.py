"""Array type aliases of the sampling package, defined once and imported everywhere.

Pure typing: importing this module costs numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
"""A float64 array: signal values in [0, 1] (NaN where a signal is missing), embeddings."""

IntArray = npt.NDArray[np.int64]
"""An int64 array: sample keys, counts, indices."""

BoolArray = npt.NDArray[np.bool_]
"""A boolean array: duplicate flags."""

__all__ = ["BoolArray", "FloatArray", "IntArray"]
