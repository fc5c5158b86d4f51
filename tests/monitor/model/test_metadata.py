"""Class names and input size from exporters' metadata; parsed as literals, never run."""

from __future__ import annotations

import pytest

from monitor.errors import InvalidInputError
from monitor.model.metadata import class_names, input_size


def test_ultralytics_and_plain_metadata() -> None:
    names = str({i: f"c{i}" for i in range(80)})  # what Ultralytics writes (str of a dict)
    assert class_names({"names": names}) == tuple(f"c{i}" for i in range(80))
    assert class_names({"classes": '["a", "b"]', "names": "{0: 'x'}"}) == ("a", "b")
    assert class_names({"classes.json": '["a"]'}) == ("a",)
    assert input_size({"config.txt": '{"imgsz": [320, 640]}'}) == (320, 640)
    assert input_size({"imgsz": "[0, 640]"}) is None


def test_metadata_is_never_executed() -> None:
    assert class_names({"names": "__import__('os').system('exit 1')"}) is None
    assert class_names({"names": "not a literal"}) is None


def test_gapped_class_indices_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"indices \[0, 2\], not 0..n-1"):
        class_names({"names": "{0: 'a', 2: 'c'}"}, "m.onnx")
