"""Segmentation models segmon runs: the built-in pure-torch model and adapters.

``load_model("reference")`` loads a bundled checkpoint; a path loads a safetensors
checkpoint, a TorchScript file or an ONNX file by its suffix. Every model answers the
:class:`~monitor.model.protocol.SegmentationModel` protocol.
"""

from __future__ import annotations

from monitor.model.adapters import BuiltinModel, HeadsModel, OnnxModel, TorchScriptModel
from monitor.model.loading import BUNDLED, bundled_path, load_model
from monitor.model.protocol import Embeddings, InstancePrediction, SegmentationModel

__all__ = [
    "BUNDLED",
    "BuiltinModel",
    "Embeddings",
    "HeadsModel",
    "InstancePrediction",
    "OnnxModel",
    "SegmentationModel",
    "TorchScriptModel",
    "bundled_path",
    "load_model",
]
