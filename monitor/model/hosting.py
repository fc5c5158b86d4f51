"""Open an exported model file as a segmentation model or an embedder, from its config.

:func:`open_segmenter` and :func:`open_embedder` read an ONNX or TorchScript file and
resolve everything the config leaves open from the file itself: an export of segmon's
own network (its ``segmon.json`` config inside) runs as before
(:mod:`~monitor.model.adapters`); any other file gets its output convention detected
(:func:`~monitor.model.conventions.plan_outputs`), its input size from its declared
input shape or its metadata (``imgsz``), its batch policy from its input shape, and its
class names from its metadata, unless the config declares them.

Names: ``<onnx|torchscript>:<stem>@<sha256[:12]>+<settings[:8]>``, the last part a
digest of the resolved settings (convention, role, preprocessing, thresholds), so the
same file run another way is another model in the stored results.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from monitor.config import ModelSpec
from monitor.errors import ConfigError, UnsafeFormatError
from monitor.model.adapters import CONFIG_KEY, OnnxModel, TorchScriptModel
from monitor.model.backends import Backend, OnnxBackend, TorchScriptBackend
from monitor.model.checkpoint import file_digest
from monitor.model.conventions import OutputInfo, plan_embedder_output, plan_outputs
from monitor.model.exported import BatchPolicy, ExportedEmbedder, ExportedSegmenter, Runner
from monitor.model.letterbox import ResizeMode
from monitor.model.metadata import class_names, input_size
from monitor.model.preprocess import Preprocessing
from monitor.model.runtime import resolve_device
from monitor.model.yolo import yolo_layout

TORCHSCRIPT_SUFFIXES = (".pt", ".torchscript", ".ts")
FileFormat = Literal["onnx", "torchscript", "safetensors"]


def file_format(path: Path, declared: FileFormat | None = None) -> FileFormat:
    """Return the declared format, or the one the suffix says.

    Raises
    ------
    UnsafeFormatError
        For any other suffix (pickle checkpoints such as ``.pth`` are never loaded).

    Examples
    --------
    >>> file_format(Path("yolov8n-seg.onnx")), file_format(Path("m.bin"), "torchscript")
    ('onnx', 'torchscript')
    >>> file_format(Path("model.pth"))
    Traceback (most recent call last):
    ...
    monitor.errors.UnsafeFormatError: refusing to load model.pth: unknown model format '.pth'; expected .safetensors, .pt/.torchscript (TorchScript) or .onnx
    """
    if declared is not None:
        return declared
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    if suffix == ".safetensors":
        return "safetensors"
    raise UnsafeFormatError(
        f"refusing to load {path}: unknown model format {suffix or '(no suffix)'!r}; "
        "expected .safetensors, .pt/.torchscript (TorchScript) or .onnx"
    )


def _backend(path: Path, fmt: FileFormat, spec: ModelSpec) -> Backend:
    device = resolve_device(spec.device)
    if fmt == "onnx":
        return OnnxBackend(path, device)
    return TorchScriptBackend(path, device)


def _heads_adapter(path: Path, fmt: FileFormat, spec: ModelSpec, batch_size: int) -> Any:
    if fmt == "onnx":
        return OnnxModel(path, spec.device, batch_size)
    return TorchScriptModel(path, spec.device, batch_size)


def _static_size(backend: Backend) -> tuple[int, int] | None:
    shape = backend.input_shape
    if shape is None or len(shape) not in (3, 4):
        return None
    h, w = shape[-2], shape[-1]
    return (h, w) if h is not None and w is not None else None


def _input_size(backend: Backend, spec: ModelSpec, where: str) -> tuple[int, int] | None:
    """Return the declared input size, else the file's fixed one, else ``imgsz``."""
    fixed = _static_size(backend)
    if spec.input_size is not None and fixed is not None and spec.input_size != fixed:
        raise ConfigError(
            f"{where} ({backend.path.name}): input_size {list(spec.input_size)} disagrees with "
            f"the file's fixed input {list(fixed)}"
        )
    return spec.input_size or fixed or input_size(backend.metadata)


def _batch(backend: Backend, spec: ModelSpec) -> BatchPolicy:
    if spec.batch is not None:
        return spec.batch
    shape = backend.input_shape
    if shape is not None and len(shape) == 3:
        return "none"
    if shape is not None and len(shape) == 4 and shape[0] is not None:
        return shape[0]
    return "dynamic"


def _prep(spec: ModelSpec, size: tuple[int, int] | None, default: ResizeMode) -> Preprocessing:
    return Preprocessing(
        input_size=size or (64, 64),
        mode="native" if size is None else (spec.resize or default),
        channels=spec.channels,
        pixel_range=spec.pixel_range,
        mean=spec.mean,
        std=spec.std,
        pad_value=spec.pad_value,
    )


def model_name(backend: Backend, settings: dict[str, Any]) -> str:
    """Return ``kind:stem@<file sha256[:12]>+<settings sha256[:8]>``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    stem = backend.path.stem[:48]
    return f"{backend.kind}:{stem}@{file_digest(backend.path)[:12]}+{digest.hexdigest()[:8]}"


def _describe(backend: Backend, outputs: list[OutputInfo]) -> dict[str, Any]:
    return {
        "source": str(backend.path),
        "sha256": file_digest(backend.path),
        "format": backend.kind,
        "outputs": [str(o) for o in outputs],
    }


def open_segmenter(
    path: Path, spec: ModelSpec, *, where: str = "model", batch_size: int = 16
) -> Any:
    """Open an ONNX or TorchScript file as a segmentation model.

    Returns
    -------
    ExportedSegmenter or HeadsModel
        A :class:`~monitor.model.protocol.InstanceSegmenter` (an export of the built-in
        network or a ``yolo-seg`` model also embeds).

    Raises
    ------
    ConfigError
        When the convention, the input size or the class names cannot be told and the
        config does not declare them; the message says what it saw.
    """
    fmt = file_format(path, spec.format)
    if fmt == "safetensors":
        raise ConfigError(f"{where}: {path} is a built-in checkpoint, not an exported file")
    backend = _backend(path, fmt, spec)
    if CONFIG_KEY in backend.metadata:
        return _heads_adapter(path, fmt, spec, batch_size)
    if spec.outputs == "heads":
        raise ConfigError(
            f"{where}: {path} is declared `heads` but carries no segmon network config "
            f"({CONFIG_KEY}); export the built-in network with monitor.model.export"
        )
    size = _input_size(backend, spec, where)
    batch = _batch(backend, spec)
    runner = Runner(backend, _prep(spec, size, "resize"), batch, batch_size)
    outputs = backend.outputs(runner.probe())
    label = f"{where} ({path.name})"
    plan = plan_outputs(outputs, spec.outputs, spec.output_names, where=label)
    classes = spec.classes or class_names(backend.metadata, label)
    details = _describe(backend, outputs)
    layout = None
    if plan.convention == "yolo-seg":
        if size is None:
            raise ConfigError(f"{label}: a yolo-seg model needs its input_size (e.g. 640)")
        runner.prep = _prep(spec, size, "letterbox")
        protos = outputs[plan.roles["prototypes"]].shape
        layout = yolo_layout(
            [d or 0 for d in outputs[plan.roles["detections"]].shape],
            int(protos[1] or 0),
            len(classes) if classes else None,
        )
        classes = classes or tuple(str(i) for i in range(layout.n_classes))
    else:
        if not classes:
            raise ConfigError(
                f"{label}: the file carries no class names; list them in `classes` "
                "(label i is classes[i])"
            )
        if "features" in plan.roles:
            feature = outputs[plan.roles["features"]].shape
            details["feature_dim"] = int(feature[-3] or 0)
    settings = {
        "role": "segmenter",
        "convention": plan.convention,
        "roles": dict(plan.roles),
        "prep": runner.prep.describe(),
        "classes": list(classes),
        "thresholds": [
            spec.score_threshold,
            spec.iou_threshold,
            spec.mask_threshold,
            spec.max_instances,
        ],
    }
    return ExportedSegmenter(
        runner,
        plan,
        tuple(classes),
        model_name(backend, settings),
        layout=layout,
        score_threshold=spec.score_threshold,
        iou_threshold=spec.iou_threshold,
        mask_threshold=spec.mask_threshold,
        max_instances=spec.max_instances,
        details=details,
    )


def open_embedder(
    path: Path, spec: ModelSpec, *, where: str = "models.embedder", batch_size: int = 16
) -> Any:
    """Open an ONNX or TorchScript image-feature model as an embedder.

    An export of the built-in network embeds as the built-in model does.

    Raises
    ------
    ConfigError
        When the input size cannot be told, or no output is an embedding.
    """
    fmt = file_format(path, spec.format)
    if fmt == "safetensors":
        raise ConfigError(f"{where}: {path} is a built-in checkpoint, not an exported file")
    backend = _backend(path, fmt, spec)
    if CONFIG_KEY in backend.metadata:
        return _heads_adapter(path, fmt, spec, batch_size)
    label = f"{where} ({path.name})"
    size = _input_size(backend, spec, where)
    if size is None:
        raise ConfigError(f"{label}: the file does not fix its input size; declare input_size")
    runner = Runner(backend, _prep(spec, size, "resize"), _batch(backend, spec), batch_size)
    outputs = backend.outputs(runner.probe())
    index, kind = plan_embedder_output(outputs, spec.output_names.get("features"), where=label)
    dim = outputs[index].shape[1]
    if dim is None or dim < 1:
        raise ConfigError(f"{label}: embedding output {outputs[index]} has no fixed size")
    settings = {"role": "embedder", "output": index, "kind": kind, "prep": runner.prep.describe()}
    return ExportedEmbedder(
        runner, index, kind, int(dim), model_name(backend, settings), _describe(backend, outputs)
    )
