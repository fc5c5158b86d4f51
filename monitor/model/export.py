"""Export the built-in network to TorchScript and ONNX.

Only the network's forward pass is exported (image batch in, the four stride-4 maps
out); decoding into instances and pooling embeddings stay in
:mod:`monitor.model.decode`, shared by every adapter, so an export predicts what the
network predicts. The network config (categories, input size) travels inside the file:
as the ``segmon.json`` extra file of a TorchScript archive, as metadata of an ONNX model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from monitor.errors import SegmonError
from monitor.model.adapters import CONFIG_KEY
from monitor.model.network import SegmentationNetwork

OUTPUT_NAMES = ("semantic", "center", "offset", "feature")


def _example(network: SegmentationNetwork) -> torch.Tensor:
    side = network.config.input_size
    return torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))


def _config_json(network: SegmentationNetwork) -> str:
    return json.dumps(network.config.to_dict(), sort_keys=True)


def export_torchscript(network: SegmentationNetwork, path: Path) -> Path:
    """Trace ``network`` (on the CPU, eval mode) into a TorchScript file at ``path``."""
    network = network.eval().to("cpu")
    with torch.no_grad():
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]  # untyped in torch
            network, _example(network), check_trace=False
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(path), _extra_files={CONFIG_KEY: _config_json(network)})
    return path


def export_onnx(network: SegmentationNetwork, path: Path, opset: int = 17) -> Path:
    """Export ``network`` (on the CPU, eval mode) to ONNX with a dynamic batch axis.

    Raises
    ------
    SegmonError
        If the ``onnx`` package (extra ``segmon[onnx]``) is missing.
    """
    try:
        import onnx
    except ImportError:
        raise SegmonError("ONNX export needs onnx: pip install 'segmon[onnx]'") from None
    network = network.eval().to("cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            network,
            (_example(network),),
            str(path),
            input_names=["images"],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in ("images", *OUTPUT_NAMES)},
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, _config_json(network)
    onnx.save(model, str(path))
    return path
