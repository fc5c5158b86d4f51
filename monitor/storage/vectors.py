"""The one codec of stored embeddings: little-endian float16 bytes, one blob per vector.

The embed job writes vectors with :func:`vectors_to_bytes`; the drift job (and anything
else reading ``image_embeddings`` / ``instance_embeddings``) decodes them with
:func:`vectors_from_bytes`, which checks every blob's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors._typing import Float32Array
from monitor.errors import InvalidInputError

__all__ = ["vectors_from_bytes", "vectors_to_bytes"]

_FLOAT16 = np.dtype("<f2")


def vectors_to_bytes(vectors: npt.ArrayLike) -> list[bytes]:
    """Encode each row of a ``(n, d)`` array as little-endian float16 bytes.

    Examples
    --------
    >>> [b.hex() for b in vectors_to_bytes([[1.0, -2.0], [0.5, 0.0]])]
    ['003c00c0', '00380000']
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise InvalidInputError(f"vectors must be a 2-D (n, d) array, got shape {array.shape}")
    half = array.astype(_FLOAT16)
    return [row.tobytes() for row in half]


def vectors_from_bytes(blobs: Sequence[bytes], dim: int) -> Float32Array:
    """Decode stored float16 vectors into a ``float32`` ``(n, dim)`` array.

    Raises
    ------
    InvalidInputError
        If a blob does not hold exactly ``dim`` float16 values.

    Examples
    --------
    >>> vectors_from_bytes(vectors_to_bytes([[1.0, -2.0], [0.1, 3.0]]), 2).tolist()
    [[1.0, -2.0], [0.0999755859375, 3.0]]
    """
    size = dim * _FLOAT16.itemsize
    for i, blob in enumerate(blobs):
        if len(blob) != size:
            raise InvalidInputError(
                f"vector {i} holds {len(blob)} bytes, not {size} for dim {dim} in float16"
            )
    data = np.frombuffer(b"".join(blobs), dtype=_FLOAT16).reshape(len(blobs), dim)
    return data.astype(np.float32)
