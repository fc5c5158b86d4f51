"""``load_model``: a bundled checkpoint by name, or a model file by its suffix."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from monitor.errors import NotFoundError, UnsafeFormatError
from monitor.model.adapters import BuiltinModel, HeadsModel, OnnxModel, TorchScriptModel

BUNDLED = ("production", "reference")
"""Names of the checkpoints shipped in ``monitor/assets/``."""

TORCHSCRIPT_SUFFIXES = (".pt", ".torchscript")


def bundled_path(name: str) -> Path:
    """Return the path of a bundled checkpoint (``production`` or ``reference``)."""
    if name not in BUNDLED:
        raise NotFoundError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(resources.files("monitor") / "assets" / f"{name}.safetensors"))


def load_model(name_or_path: str, device: str | None = None, batch_size: int = 16) -> HeadsModel:
    """Load a model: ``production`` / ``reference`` (bundled) or a file by its suffix.

    ``.safetensors``: a built-in checkpoint; ``.pt`` / ``.torchscript``: a TorchScript
    export; ``.onnx``: an ONNX export (needs ``segmon[onnx]``).

    Parameters
    ----------
    name_or_path
        A bundled name or a file path.
    device
        ``"cpu"``, ``"cuda"``, or ``None`` for CUDA when available.
    batch_size
        Images per forward pass.

    Returns
    -------
    HeadsModel
        A :class:`~monitor.model.protocol.SegmentationModel`.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UnsafeFormatError
        For any other suffix (pickle checkpoints such as ``.pth`` / ``.ckpt`` / ``.bin``
        are never loaded).

    Examples
    --------
    >>> model = load_model("production", device="cpu")
    >>> model.name.startswith("builtin:production@"), model.categories
    (True, ('disc', 'box', 'triangle', 'star'))
    """
    if name_or_path in BUNDLED:
        return BuiltinModel.from_checkpoint(bundled_path(name_or_path), device, batch_size)
    path = Path(name_or_path)
    if not path.is_file():
        raise NotFoundError(
            f"model {name_or_path!r} is neither a bundled name ({', '.join(BUNDLED)}) "
            "nor an existing file"
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return BuiltinModel.from_checkpoint(path, device, batch_size)
    if suffix in TORCHSCRIPT_SUFFIXES:
        return TorchScriptModel(path, device, batch_size)
    if suffix == ".onnx":
        return OnnxModel(path, device, batch_size)
    raise UnsafeFormatError(
        f"refusing to load {path}: unknown model format {suffix or '(no suffix)'!r}; "
        "expected .safetensors, .pt/.torchscript (TorchScript) or .onnx"
    )
