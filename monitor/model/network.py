"""The built-in network: a small residual backbone, a feature pyramid, three heads.

Panoptic-DeepLab style: a semantic head (background + one logit per class), an
instance-center heatmap and per-pixel offsets to the instance's center, all at stride 4.
The forward pass also returns the stride-4 pyramid feature, which the embeddings pool.
Pure torch; exports to TorchScript and ONNX unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from monitor.errors import ConfigError

OUTPUT_STRIDE = 4
"""Stride of every head and of the embedding feature, relative to the model input."""

OFFSET_SCALE = 16.0
"""The offset head predicts offsets in units of this many input pixels."""

MAX_PARAMETER_BYTES = 1 << 30
"""Largest network built: 1 GiB of float32 weights (the bundled ones need about 1 MB)."""

MAX_INPUT_SIZE = 2048
"""Largest square model input, in pixels (activations grow with its square)."""


def _conv_bn_params(c_in: int, c_out: int, kernel: int = 3) -> int:
    return c_in * c_out * kernel * kernel + 2 * c_out


def _block_params(c_in: int, c_out: int, stride: int) -> int:
    skip = 0 if stride == 1 and c_in == c_out else c_in * c_out + 2 * c_out
    return c_in * c_out * 9 + c_out * c_out * 9 + 4 * c_out + skip


def parameter_count(categories: int, width: int, blocks: int) -> int:
    """Return the number of trainable weights of a network, without building it.

    Examples
    --------
    >>> net = SegmentationNetwork(NetworkConfig(categories=("a", "b"), width=4, input_size=64))
    >>> parameter_count(2, 4, 1) == sum(p.numel() for p in net.parameters())
    True
    """
    w = width
    channels = (w, 2 * w, 4 * w, 8 * w)
    d = 2 * w
    total = _conv_bn_params(3, w)
    c_in = w
    for c_out in channels:
        total += _block_params(c_in, c_out, 2) + (blocks - 1) * _block_params(c_out, c_out, 1)
        c_in = c_out
    total += sum(c * d + d for c in channels)
    total += 2 * _conv_bn_params(d, d)
    total += (d + 1) * (categories + 1) + (d + 1) + (d + 1) * 2
    return total


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the built-in network (stored in every checkpoint).

    Parameters
    ----------
    categories
        Class names; ``categories[i]`` is category id ``i + 1``.
    width
        Channels of the first stage; stages have ``width * (1, 2, 4, 8)`` channels and the
        pyramid ``2 * width`` (the embedding dimension).
    input_size
        Side of the square model input in pixels (a multiple of 32).
    blocks
        Residual blocks per stage.

    Examples
    --------
    >>> NetworkConfig(categories=("a", "b"), width=8, input_size=128).embedding_dim
    16
    >>> NetworkConfig(categories=("a",), width=8, input_size=100)
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: input_size must be a positive multiple of 32, got 100
    """

    categories: tuple[str, ...]
    width: int = 16
    input_size: int = 256
    blocks: int = 1

    def __post_init__(self) -> None:
        if not self.categories:
            raise ConfigError("a model needs at least one category")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 4:
            raise ConfigError(f"width must be an integer >= 4, got {self.width!r}")
        if self.input_size <= 0 or self.input_size % 32:
            raise ConfigError(
                f"input_size must be a positive multiple of 32, got {self.input_size!r}"
            )
        if self.blocks < 1:
            raise ConfigError(f"blocks must be >= 1, got {self.blocks!r}")
        if self.input_size > MAX_INPUT_SIZE:
            raise ConfigError(
                f"input_size {self.input_size} is larger than {MAX_INPUT_SIZE}: refusing to "
                "build a model whose activations would not fit in memory"
            )
        weights = 4 * parameter_count(len(self.categories), self.width, self.blocks)
        if weights > MAX_PARAMETER_BYTES:
            raise ConfigError(
                f"a model of width {self.width}, {self.blocks} blocks per stage and "
                f"{len(self.categories)} classes needs {weights / 2**30:.1f} GiB of weights, "
                f"more than {MAX_PARAMETER_BYTES / 2**30:.0f} GiB: refusing to allocate it"
            )
        object.__setattr__(self, "categories", tuple(self.categories))

    @property
    def num_classes(self) -> int:
        """Number of object classes (without background)."""
        return len(self.categories)

    @property
    def embedding_dim(self) -> int:
        """Channels of the pyramid feature the embeddings pool."""
        return 2 * self.width

    def to_dict(self) -> dict[str, object]:
        """Return the config as plain JSON-able values."""
        return {**asdict(self), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NetworkConfig:
        """Rebuild a config from :meth:`to_dict` output (as stored in model files).

        Raises
        ------
        ConfigError
            For a missing or non-integer value, or a model too large to build (checked
            before anything is allocated).

        Examples
        --------
        >>> NetworkConfig.from_dict({"categories": ["a"], "width": 1700, "input_size": 256,
        ...                          "blocks": 1})
        Traceback (most recent call last):
        ...
        monitor.errors.ConfigError: a model of width 1700, 1 blocks per stage and 1 classes needs 14.0 GiB of weights, more than 1 GiB: refusing to allocate it
        """
        try:
            categories = raw["categories"]
            values = [raw[key] for key in ("width", "input_size", "blocks")]
            if isinstance(categories, str) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise TypeError("width, input_size and blocks must be integers")
            width, input_size, blocks = (int(v) for v in values)
            names = tuple(str(c) for c in categories)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model config {dict(raw)!r:.200} is not usable: {exc!r}") from None
        return cls(categories=names, width=width, input_size=input_size, blocks=blocks)


def _conv_bn(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1: nn.Module = nn.BatchNorm2d(c_out)  # Identity once folded
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x), inplace=True)


def _stage(c_in: int, c_out: int, blocks: int) -> nn.Sequential:
    layers = [_ResidualBlock(c_in, c_out, 2)]
    layers += [_ResidualBlock(c_out, c_out, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SegmentationNetwork(nn.Module):
    """Backbone (strides 4-32), top-down feature pyramid to stride 4, three 1x1 heads.

    The heads share one 3x3 convolution over the pyramid feature (compact enough to train
    on two CPU cores in minutes).

    ``forward`` maps a float image batch ``(N, 3, S, S)`` in ``[0, 1]`` to
    ``(semantic_logits (N, K+1, S/4, S/4), center_heatmap (N, 1, S/4, S/4),
    offsets (N, 2, S/4, S/4) in input pixels (dy, dx), feature (N, D, S/4, S/4))``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = SegmentationNetwork(NetworkConfig(categories=("a", "b"), width=4, input_size=64))
    >>> [tuple(t.shape) for t in net(torch.zeros(1, 3, 64, 64))]
    [(1, 3, 16, 16), (1, 1, 16, 16), (1, 2, 16, 16), (1, 8, 16, 16)]
    """

    mean: Tensor
    std: Tensor

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        w, b = config.width, config.blocks
        channels = (w, 2 * w, 4 * w, 8 * w)
        self.stem = _conv_bn(3, w, stride=2)
        self.stages = nn.ModuleList(
            [
                _stage(w, channels[0], b),
                _stage(channels[0], channels[1], b),
                _stage(channels[1], channels[2], b),
                _stage(channels[2], channels[3], b),
            ]
        )
        d = config.embedding_dim
        self.lateral = nn.ModuleList([nn.Conv2d(c, d, 1) for c in channels])
        self.smooth = _conv_bn(d, d)
        self.trunk = _conv_bn(d, d)
        self.semantic = nn.Conv2d(d, config.num_classes + 1, 1)
        self.center = nn.Conv2d(d, 1, 1)
        self.offset = nn.Conv2d(d, 2, 1)
        self.register_buffer(
            "mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False
        )

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``(semantic_logits, center_heatmap, offsets, feature)`` at stride 4."""
        x = self.stem((images - self.mean) / self.std)
        features: list[Tensor] = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        top = self.lateral[3](features[3])
        for level in (2, 1, 0):
            lateral = self.lateral[level](features[level])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
        feature = self.smooth(top)
        trunk = self.trunk(feature)
        offsets = self.offset(trunk) * OFFSET_SCALE
        return self.semantic(trunk), self.center(trunk), offsets, feature


def _fold(conv: nn.Conv2d, norm: nn.Module) -> tuple[nn.Conv2d, nn.Module]:
    """Return ``(conv with norm folded in, Identity)``, or the pair as it was."""
    if isinstance(norm, nn.BatchNorm2d):
        return fuse_conv_bn_eval(conv, norm), nn.Identity()
    return conv, norm


def fold_batch_norms(network: SegmentationNetwork) -> SegmentationNetwork:
    """Return an inference copy of ``network`` with every batch norm folded into its conv.

    In eval mode a batch norm after a convolution is an affine map per channel, so it
    can be folded into the convolution's weights and bias: one pass over the activations
    fewer per layer. The copy is in eval mode and for inference only (its structure is
    not a checkpoint's); ``network`` is left as it was. Outputs equal the original's up
    to float rounding.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = SegmentationNetwork(NetworkConfig(categories=("a",), width=4, input_size=64)).eval()
    >>> folded = fold_batch_norms(net)
    >>> x = torch.rand(2, 3, 64, 64)
    >>> all(torch.allclose(a, b, atol=1e-5) for a, b in zip(net(x), folded(x)))
    True
    >>> sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    0
    """
    folded = copy.deepcopy(network).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential) and len(module) >= 2:
            if isinstance(module[0], nn.Conv2d):
                module[0], module[1] = _fold(module[0], module[1])
        elif isinstance(module, _ResidualBlock):
            module.conv1, module.bn1 = _fold(module.conv1, module.bn1)
            module.conv2, module.bn2 = _fold(module.conv2, module.bn2)
    return folded
