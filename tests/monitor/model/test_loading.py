"""load_model: a bundled name or a file, chosen by suffix; anything unsafe is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import NotFoundError, UnsafeFormatError
from monitor.model.loading import load_model


def test_load_model_dispatches_by_suffix_and_refuses_the_rest(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="missing.onnx"):
        load_model(str(tmp_path / "missing.onnx"))
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"\x89HDF")
    with pytest.raises(UnsafeFormatError, match="model.h5"):
        load_model(str(odd))
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"not a zip")
    with pytest.raises(UnsafeFormatError, match="model.pt"):
        load_model(str(fake))
