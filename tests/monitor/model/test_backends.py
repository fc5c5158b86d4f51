"""Backends refuse what is not their format; TorchScript never unpickles a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monitor.errors import InvalidInputError, UnsafeFormatError
from monitor.model.backends import OnnxBackend, TorchScriptBackend
from tests.support.exported_models import ExportedToys


def test_pickle_checkpoints_are_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, path)  # a zip too, but a pickle inside
    with pytest.raises(UnsafeFormatError, match="not a TorchScript archive"):
        TorchScriptBackend(path, torch.device("cpu"))


def test_not_onnx_is_an_invalid_input(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime (extra segmon[onnx]) is not installed")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not protobuf")
    with pytest.raises(InvalidInputError, match="is not an ONNX model"):
        OnnxBackend(path, torch.device("cpu"))


def test_backends_report_inputs_outputs_and_metadata(exported_toys: ExportedToys) -> None:
    onnx = OnnxBackend(exported_toys.yolo_v5_onnx, torch.device("cpu"))
    assert onnx.input_shape == (1, 3, 64, 64)
    assert onnx.metadata["imgsz"] == "[64, 64]"
    outs = onnx.outputs(torch.zeros(1, 3, 64, 64))
    assert [str(x) for x in outs] == [
        "output0 float32 (1, 16, 11)",
        "output1 float32 (1, 2, 16, 16)",
    ]
    script = TorchScriptBackend(exported_toys.rcnn_torchscript, torch.device("cpu"))
    assert script.input_shape is None and script.metadata["classes.json"].startswith("[")
    outs = script.outputs(torch.zeros(1, 3, 32, 48))
    assert [x.dtype for x in outs] == ["float32", "int64", "float32", "float32"]
    assert outs[3].shape == (3, 1, 32, 48)
