"""Runtimes of exported model files: ONNX (onnxruntime) and TorchScript.

A :class:`Backend` runs a file's graph on a float input batch and returns its outputs in
order, and reports what the file says about itself: its input shape, its outputs
(:class:`~monitor.model.conventions.OutputInfo`) and its metadata (ONNX
``metadata_props``; TorchScript extra files ``config.txt``, Ultralytics' metadata, and
``classes.json``). Nothing here unpickles: TorchScript archives are checked to be
TorchScript before ``torch.jit.load`` (a ``torch.save`` pickle is refused), and ONNX
is protobuf.

On CUDA, onnxruntime uses its CUDA provider when installed; TorchScript runs under
autocast (bfloat16 where supported, else float16) unless ``amp`` is off.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from monitor.errors import InvalidInputError, SegmonError
from monitor.model.adapters import CONFIG_KEY, _require_torchscript_archive
from monitor.model.conventions import OutputInfo

TORCHSCRIPT_EXTRA_FILES = (CONFIG_KEY, "config.txt", "classes.json")
"""Extra files read from a TorchScript archive (segmon's config, Ultralytics', class names)."""

_ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _dims(shape: Sequence[Any] | None) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in (shape or ()))


class Backend(ABC):
    """A model file's graph: inputs, outputs, metadata, and a forward pass."""

    kind: str
    """``onnx`` or ``torchscript`` (the prefix of the model's name)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.path = path
        self.device = device
        self.metadata: dict[str, str] = {}
        self.input_shape: tuple[int | None, ...] | None = None
        """Declared input shape (ONNX), or None where the file does not say (TorchScript)."""

    @abstractmethod
    def run(self, batch: Tensor) -> list[Tensor]:
        """Run the graph on ``batch`` (on :attr:`device`); return its outputs in order."""

    @abstractmethod
    def outputs(self, probe: Tensor) -> list[OutputInfo]:
        """Describe the outputs (running ``probe`` through the graph if it must)."""


class OnnxBackend(Backend):
    """An ONNX file run by onnxruntime (extra ``segmon[onnx]``)."""

    kind = "onnx"

    def __init__(self, path: Path, device: torch.device) -> None:
        super().__init__(path, device)
        try:
            import onnxruntime
        except ImportError:
            raise SegmonError(
                f"loading {path} needs onnxruntime: pip install 'segmon[onnx]'"
            ) from None
        providers = ["CPUExecutionProvider"]
        if (
            device.type == "cuda"
            and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        ):
            providers.insert(0, "CUDAExecutionProvider")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInputError(f"{path} is not an ONNX model: {exc}") from None
        first = self.session.get_inputs()[0]
        self.input_name: str = first.name
        self.input_dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        self.input_shape = _dims(first.shape)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: Tensor) -> list[Tensor]:
        """Run the session on the batch (copied to the host)."""
        feed = batch.detach().float().cpu().numpy().astype(self.input_dtype, copy=False)
        try:
            results = self.session.run(None, {self.input_name: feed})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInputError(
                f"{self.path.name} refused an input of shape {tuple(feed.shape)} "
                f"(its input is {self.input_shape}): {str(exc).splitlines()[0]}"
            ) from exc
        return [torch.from_numpy(np.ascontiguousarray(r)) for r in results]

    def outputs(self, probe: Tensor) -> list[OutputInfo]:
        """Return the outputs as the file declares them; a probe run fills in dynamic dims."""
        declared = [
            OutputInfo(o.name, _dims(o.shape), _ONNX_TYPES.get(o.type, o.type))
            for o in self.session.get_outputs()
        ]
        if all(None not in o.shape for o in declared):
            return declared
        observed = self.run(probe)
        return [
            OutputInfo(
                o.name,
                tuple(
                    d if d is not None else int(s) for d, s in zip(o.shape, r.shape, strict=False)
                )
                if len(o.shape) == r.ndim
                else tuple(int(s) for s in r.shape),
                o.dtype,
            )
            for o, r in zip(declared, observed, strict=True)
        ]


def _flatten(result: Any) -> tuple[list[str], list[Tensor]]:
    """Name and list the outputs of a TorchScript call (a tensor, a sequence or a dict)."""
    if isinstance(result, Tensor):
        return ["output0"], [result]
    if isinstance(result, Mapping):
        items = [(str(k), v) for k, v in result.items()]
    elif isinstance(result, list | tuple):
        items = [(f"output{i}", v) for i, v in enumerate(result)]
    else:
        raise InvalidInputError(f"TorchScript model returned {type(result).__name__}, not tensors")
    for name, value in items:
        if not isinstance(value, Tensor):
            raise InvalidInputError(
                f"TorchScript output {name!r} is a {type(value).__name__}, not a tensor; "
                "export a module that returns tensors (a tuple or a dict of them)"
            )
    return [n for n, _ in items], [v for _, v in items]


class TorchScriptBackend(Backend):
    """A TorchScript archive (``torch.jit.load``; pickle checkpoints are refused)."""

    kind = "torchscript"

    def __init__(self, path: Path, device: torch.device, amp: bool = True) -> None:
        super().__init__(path, device)
        _require_torchscript_archive(path)
        extra = dict.fromkeys(TORCHSCRIPT_EXTRA_FILES, "")
        try:
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)  # type: ignore[no-untyped-call]  # untyped in torch
        except RuntimeError as exc:
            raise InvalidInputError(f"{path} is not a TorchScript file: {exc}") from None
        self.module = module.eval()
        self.metadata = {
            k: v.decode() if isinstance(v, bytes) else str(v) for k, v in extra.items() if v
        }
        self.amp = amp
        self.output_names: list[str] = []

    def run(self, batch: Tensor) -> list[Tensor]:
        """Call the module (autocast on CUDA); outputs as float32/int on the CPU."""
        enabled = self.amp and self.device.type == "cuda"
        dtype = torch.bfloat16
        if enabled and not torch.cuda.is_bf16_supported():
            dtype = torch.float16
        with torch.autocast(self.device.type, dtype=dtype, enabled=enabled):
            try:
                result = self.module(batch)
            except RuntimeError as exc:
                raise InvalidInputError(
                    f"{self.path.name} failed on an input of shape {tuple(batch.shape)}: "
                    f"{str(exc).splitlines()[0]}"
                ) from exc
            names, tensors = _flatten(result)
        self.output_names = names
        return [t.float().cpu() if t.is_floating_point() else t.cpu() for t in tensors]

    def outputs(self, probe: Tensor) -> list[OutputInfo]:
        """Run ``probe`` and report what came out (TorchScript declares no shapes)."""
        with torch.inference_mode():
            tensors = self.run(probe)
        return [
            OutputInfo(name, tuple(int(s) for s in t.shape), str(t.dtype).removeprefix("torch."))
            for name, t in zip(self.output_names, tensors, strict=True)
        ]
