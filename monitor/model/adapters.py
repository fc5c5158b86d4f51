"""The three :class:`~monitor.model.protocol.SegmentationModel` adapters of the network.

:class:`HeadsModel` runs the shared steps (batching, resizing to the model input,
decoding, pooling embeddings); a subclass only fills in :meth:`HeadsModel.run_network`,
the forward pass that maps an image batch to the four head maps:

* :class:`BuiltinModel`: the pure-torch network from a safetensors checkpoint;
* :class:`TorchScriptModel`: a TorchScript export (``torch.jit.load``);
* :class:`OnnxModel`: an ONNX export, run by onnxruntime (extra ``segmon[onnx]``).

On CUDA the torch adapters run under autocast (bfloat16 where supported, else float16);
host images are pinned before the copy. The built-in network runs with its batch norms
folded into the convolutions (:func:`~monitor.model.network.fold_batch_norms`) and
channels-last inputs, on the CPU too (about a third faster there; outputs differ from
the unfolded network's in the last float bits only). Everything runs in eval mode under
:func:`torch.inference_mode`; on the CPU the same input gives the same output, bit for
bit.

With a :class:`~monitor.model.memo.PredictionMemo` (:attr:`HeadsModel.memo`), ``embed``
also decodes the instances of the heads it computed and keeps them, and ``predict``
reuses them: the embed and shadow jobs then share one forward pass per image.
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from detectors._typing import ImageArray, MaskArray
from monitor.errors import InvalidInputError, SegmonError, UnsafeFormatError
from monitor.model.checkpoint import file_digest, load_checkpoint
from monitor.model.decode import DecodeOptions, decode_instances, pool_embeddings
from monitor.model.memo import PredictionMemo
from monitor.model.network import NetworkConfig, SegmentationNetwork, fold_batch_norms
from monitor.model.protocol import Embeddings, InstancePrediction
from monitor.model.runtime import prepare_batch, resolve_device

Heads = tuple[Tensor, Tensor, Tensor, Tensor]
CONFIG_KEY = "segmon.json"
"""Name of the network config stored inside TorchScript (extra file) and ONNX (metadata)."""


class HeadsModel(ABC):
    """Base of the adapters: everything but the forward pass.

    Parameters
    ----------
    config
        Architecture of the network (categories, input size, embedding dimension).
    name
        The model's stable identifier.
    device
        ``"cpu"``, ``"cuda"`` or ``None`` (CUDA if available).
    batch_size
        Images per forward pass.
    decode
        Decoding thresholds.
    """

    def __init__(
        self,
        config: NetworkConfig,
        name: str,
        device: str | None = None,
        batch_size: int = 16,
        decode: DecodeOptions | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size!r}")
        self.config = config
        self.name = name
        self.categories = config.categories
        self.embedding_dim = config.embedding_dim
        self.input_size = config.input_size
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.decode_options = decode or DecodeOptions()
        self.memo: PredictionMemo | None = None
        """Where ``embed`` keeps its images' predictions for ``predict`` (None: nowhere)."""

    def describe(self) -> dict[str, Any]:
        """Return what this model is: the built-in heads, its input size and classes."""
        return {
            "convention": "heads",
            "input_size": self.config.input_size,
            "classes": len(self.categories),
            "embedding": "masked pooling",
        }

    @abstractmethod
    def run_network(self, batch: Tensor) -> Heads:
        """Map ``(N, 3, S, S)`` float images in [0, 1] on :attr:`device` to the heads."""

    def _heads(self, images: Sequence[ImageArray]) -> list[Heads]:
        """Run the network in batches; return per image the heads on the CPU as float32."""
        out: list[Heads] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                batch = prepare_batch(chunk, self.config.input_size, self.device)
                heads = [h.float().cpu() for h in self.run_network(batch)]
                out.extend(
                    (heads[0][i], heads[1][i], heads[2][i], heads[3][i]) for i in range(len(chunk))
                )
        return out

    def _decode(self, image: ImageArray, heads: Heads) -> list[InstancePrediction]:
        return decode_instances(heads[0], heads[1], heads[2], image.shape[:2], self.decode_options)

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        """Return the instances found in each image, masks at the image's own size.

        Images whose predictions :meth:`embed` kept in :attr:`memo` are not run again.
        """
        memo = self.memo
        found: list[list[InstancePrediction] | None] = [
            memo.take(image) if memo is not None else None for image in images
        ]
        missing = [i for i, kept in enumerate(found) if kept is None]
        if missing:
            heads = self._heads([images[i] for i in missing])
            for i, image_heads in zip(missing, heads, strict=True):
                found[i] = self._decode(images[i], image_heads)
        return [kept if kept is not None else [] for kept in found]

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        """Return pooled pyramid features per image and per given mask.

        With a :attr:`memo`, each image's instances are decoded too and kept there for
        :meth:`predict`. See :func:`~monitor.model.decode.pool_embeddings` for how masks are resized to
        the stride-4 feature map (an empty mask gets the image vector).
        """
        if len(masks) != len(images):
            raise InvalidInputError(f"{len(images)} images but {len(masks)} mask lists")
        vectors: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        instances = []
        memo = self.memo
        for i, (image, image_masks, heads) in enumerate(
            zip(images, masks, self._heads(images), strict=True)
        ):
            for mask in image_masks:
                if mask.shape != image.shape[:2]:
                    raise InvalidInputError(
                        f"mask of image {i} is {mask.shape}, the image is {image.shape[:2]}"
                    )
            vector, inst = pool_embeddings(heads[3], list(image_masks))
            vectors.append(vector)
            instances.append(inst)
            if memo is not None:
                memo.put(image, self._decode(image, heads))
        dim = self.embedding_dim
        stacked = np.stack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
        return Embeddings(images=stacked.astype(np.float32), instances=instances)

    def _autocast(self) -> torch.autocast:
        dtype = torch.bfloat16
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            dtype = torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.device.type == "cuda")


def model_name(kind: str, path: Path) -> str:
    """Return ``kind:stem@<sha256[:12]>`` for a model file."""
    return f"{kind}:{path.stem}@{file_digest(path)[:12]}"


class BuiltinModel(HeadsModel):
    """The pure-torch network (from :func:`~monitor.model.checkpoint.load_checkpoint`)."""

    def __init__(
        self,
        network: SegmentationNetwork,
        name: str,
        device: str | None = None,
        batch_size: int = 16,
        decode: DecodeOptions | None = None,
    ) -> None:
        super().__init__(network.config, name, device, batch_size, decode)
        self.network = network.eval().to(self.device)
        """The network as given (its weights are what checkpoints and exports hold)."""
        folded = fold_batch_norms(self.network)
        self._folded: SegmentationNetwork = folded.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack memory_format

    @classmethod
    def from_checkpoint(
        cls, path: Path, device: str | None = None, batch_size: int = 16
    ) -> BuiltinModel:
        """Load a safetensors checkpoint; the name is ``builtin:<stem>@<sha256[:12]>``."""
        network, _ = load_checkpoint(path)
        return cls(network, model_name("builtin", path), device, batch_size)

    def run_network(self, batch: Tensor) -> Heads:
        """Run the folded network on a channels-last batch (autocast on CUDA)."""
        batch = batch.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out: Heads = self._folded(batch)
        return out


def _config_from_json(text: str | bytes, path: Path) -> NetworkConfig:
    try:
        return NetworkConfig.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{path} has no usable segmon config ({CONFIG_KEY}): {exc!r}; export it with "
            "monitor.model.export"
        ) from None


def _require_torchscript_archive(path: Path) -> None:
    """Refuse files that are not TorchScript archives (``torch.save`` pickles included).

    A TorchScript archive is a zip with compiled ``code/`` and ``constants.pkl``; a
    ``torch.save`` checkpoint (zip or legacy) is a pickle of arbitrary objects.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        names = []
    if not any(n.endswith("/constants.pkl") for n in names) or not any(
        "/code/" in n for n in names
    ):
        raise UnsafeFormatError(
            f"refusing to load {path}: not a TorchScript archive (a torch.save pickle "
            "checkpoint?); export TorchScript with monitor.model.export or use safetensors"
        )


class TorchScriptModel(HeadsModel):
    """A TorchScript export of the network (its config in the ``segmon.json`` extra file)."""

    def __init__(self, path: Path, device: str | None = None, batch_size: int = 16) -> None:
        _require_torchscript_archive(path)
        extra = {CONFIG_KEY: ""}
        dev = resolve_device(device)
        try:
            module = torch.jit.load(str(path), map_location=dev, _extra_files=extra)  # type: ignore[no-untyped-call]
        except RuntimeError as exc:
            raise InvalidInputError(f"{path} is not a TorchScript file: {exc}") from None
        config = _config_from_json(extra[CONFIG_KEY], path)
        super().__init__(config, model_name("torchscript", path), device, batch_size)
        self.module = module.eval()

    def run_network(self, batch: Tensor) -> Heads:
        """Run the scripted module (autocast on CUDA)."""
        with self._autocast():
            out = self.module(batch)
        return (out[0], out[1], out[2], out[3])


class OnnxModel(HeadsModel):
    """An ONNX export of the network, run by onnxruntime (config in the model metadata)."""

    def __init__(self, path: Path, device: str | None = None, batch_size: int = 16) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise SegmonError(
                f"loading {path} needs onnxruntime: pip install 'segmon[onnx]'"
            ) from None
        dev = resolve_device(device)
        providers = ["CPUExecutionProvider"]
        if dev.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInputError(f"{path} is not an ONNX model: {exc}") from None
        meta = session.get_modelmeta().custom_metadata_map
        config = _config_from_json(meta.get(CONFIG_KEY, ""), path)
        super().__init__(config, model_name("onnx", path), device, batch_size)
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def run_network(self, batch: Tensor) -> Heads:
        """Run the ONNX graph on the batch (copied to the host)."""
        outputs = self.session.run(None, {self.input_name: batch.float().cpu().numpy()})
        sem, cen, off, feat = (torch.from_numpy(np.asarray(o)) for o in outputs)
        return sem, cen, off, feat
