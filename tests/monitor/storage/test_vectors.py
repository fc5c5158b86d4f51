"""Embeddings are stored as float16 bytes: round trip, and sizes checked on the way back."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.errors import InvalidInputError
from monitor.storage.vectors import vectors_from_bytes, vectors_to_bytes


def test_float16_round_trip() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(7, 33)).astype(np.float32)
    blobs = vectors_to_bytes(vectors)
    assert {len(b) for b in blobs} == {66}
    back = vectors_from_bytes(blobs, 33)
    assert back.dtype == np.float32 and back.shape == (7, 33)
    assert np.array_equal(back, vectors.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(back, vectors, rtol=1e-3, atol=1e-4)
    with pytest.raises(InvalidInputError, match="vector 1 holds 64 bytes, not 66"):
        vectors_from_bytes([blobs[0], blobs[1][:64]], 33)
