"""Checkpoints of the built-in network: safetensors with the architecture in the metadata.

Only safetensors files are ever loaded: a pickle (``torch.save``) checkpoint can run
arbitrary code when loaded, so it is refused with :class:`UnsafeFormatError`. The
metadata holds ``segmon.format``, ``segmon.config`` (the :class:`NetworkConfig` as JSON,
class names included) and ``segmon.training`` (how the weights were made, as JSON).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from monitor.errors import InvalidInputError, NotFoundError, UnsafeFormatError
from monitor.model.network import NetworkConfig, SegmentationNetwork

FORMAT = "segmon-builtin/1"
"""Value of ``segmon.format`` in every checkpoint this version writes."""


def file_digest(path: Path) -> str:
    """Return the sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    network: SegmentationNetwork, path: Path, training: Mapping[str, Any] | None = None
) -> Path:
    """Write ``network``'s weights and config to a safetensors file.

    Parameters
    ----------
    network
        The network (any device; weights are stored as float32 on the CPU).
    path
        Destination; must end in ``.safetensors``.
    training
        JSON-able description of how the weights were made (stored as metadata).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    UnsafeFormatError
        If ``path`` does not end in ``.safetensors``.
    """
    if path.suffix != ".safetensors":
        raise UnsafeFormatError(f"checkpoints are written as .safetensors, not {path.name!r}")
    state = {k: v.detach().float().cpu().contiguous() for k, v in network.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    metadata = {
        "segmon.format": FORMAT,
        "segmon.config": json.dumps(network.config.to_dict(), sort_keys=True),
        "segmon.training": json.dumps(dict(training or {}), sort_keys=True, default=str),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """Return the safetensors metadata of ``path``, refusing anything that is not one.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UnsafeFormatError
        If the file is not named ``*.safetensors`` or is not a safetensors file (a pickle
        or zip ``torch.save`` checkpoint, say).
    """
    if not path.is_file():
        raise NotFoundError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise UnsafeFormatError(
            f"refusing to load {path}: only .safetensors checkpoints are loaded "
            "(pickle checkpoints can run arbitrary code)"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise UnsafeFormatError(
            f"refusing to load {path}: not a safetensors file ({exc}); pickle "
            "checkpoints (torch.save) are never loaded"
        ) from None


def load_checkpoint(path: Path) -> tuple[SegmentationNetwork, dict[str, Any]]:
    """Load a network written by :func:`save_checkpoint`, in eval mode on the CPU.

    Returns
    -------
    tuple
        The network and the ``segmon.training`` metadata.

    Raises
    ------
    UnsafeFormatError
        If the file is not a safetensors file (see :func:`read_metadata`).
    InvalidInputError
        If the safetensors file has no segmon metadata or its weights do not fit its
        architecture.
    ConfigError
        If its architecture is unusable or too large to build (refused before anything
        is allocated).
    """
    metadata = read_metadata(path)
    if metadata.get("segmon.format") != FORMAT or "segmon.config" not in metadata:
        raise InvalidInputError(
            f"{path} is a safetensors file without segmon metadata (segmon.format="
            f"{metadata.get('segmon.format')!r}); write checkpoints with `segmon train`"
        )
    try:
        raw_config = json.loads(metadata["segmon.config"])
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{path} has a segmon.config that is not JSON: {exc}") from None
    if not isinstance(raw_config, Mapping):
        raise InvalidInputError(f"{path} has a segmon.config that is not an object")
    # checked (sizes included) before a byte of the network is allocated
    network = SegmentationNetwork(NetworkConfig.from_dict(raw_config))
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise InvalidInputError(
            f"{path} does not fit its architecture: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    return network.eval(), json.loads(metadata.get("segmon.training", "{}"))
