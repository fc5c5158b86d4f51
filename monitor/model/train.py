"""Training of the built-in network: seeded, augmented, CPU or CUDA (with AMP).

:func:`train_network` is what ``segmon train`` runs: AdamW with a short warm-up and a
cosine decay; loss = cross-entropy on the semantic logits (upsampled to the input; hardest 25 %
of the pixels) +
100 x MSE on the center heatmap + 0.01 x L1 (pixels) on the offsets of foreground cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from monitor.errors import ConfigError
from monitor.model.data import TrainingData
from monitor.model.network import OUTPUT_STRIDE, NetworkConfig, SegmentationNetwork
from monitor.model.runtime import resolve_device

CENTER_WEIGHT = 100.0
"""Weight of the center-heatmap MSE (Panoptic-DeepLab uses 200 with separate decoders;
the heads here share one trunk, and 100 lets the semantic head learn faster)."""
OFFSET_WEIGHT = 0.01
"""Weight of the offset L1 loss, in pixels."""
HARD_PIXEL_FRACTION = 0.25
"""The semantic loss averages only the hardest quarter of the pixels (as Panoptic-DeepLab
does), so the few object pixels are not drowned by easy background."""


class Augmentation(StrEnum):
    """Augmentations ``segmon train --augment`` accepts."""

    FLIP = "flip"
    """Random horizontal and vertical flips."""
    BRIGHTNESS = "brightness"
    """Add a random offset to every pixel (darker or brighter)."""
    CONTRAST = "contrast"
    """Scale the deviation from the image mean (flatter or stronger)."""
    NOISE = "noise"
    """Add Gaussian pixel noise."""
    BLUR = "blur"
    """Gaussian blur of a random width."""


PHOTOMETRIC: tuple[Augmentation, ...] = (
    Augmentation.BRIGHTNESS,
    Augmentation.CONTRAST,
    Augmentation.NOISE,
    Augmentation.BLUR,
)
"""The photometric augmentations (``--augment photometric`` means all of them)."""


def parse_augmentations(names: Sequence[str]) -> frozenset[Augmentation]:
    """Parse ``--augment`` values; ``photometric`` and ``all`` are shorthands.

    Examples
    --------
    >>> sorted(parse_augmentations(["flip", "noise"]))
    [<Augmentation.FLIP: 'flip'>, <Augmentation.NOISE: 'noise'>]
    >>> len(parse_augmentations(["all"]))
    5
    >>> parse_augmentations(["fog"])
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: unknown augmentation 'fog'; expected one of flip, brightness, contrast, noise, blur, photometric, all
    """
    chosen: set[Augmentation] = set()
    for name in names:
        key = name.strip().lower()
        if key == "photometric":
            chosen.update(PHOTOMETRIC)
        elif key == "all":
            chosen.update(Augmentation)
        elif key in {a.value for a in Augmentation}:
            chosen.add(Augmentation(key))
        elif key != "none":
            known = ", ".join([a.value for a in Augmentation] + ["photometric", "all"])
            raise ConfigError(f"unknown augmentation {name!r}; expected one of {known}")
    return frozenset(chosen)


@dataclass(frozen=True)
class TrainOptions:
    """How :func:`train_network` trains.

    Parameters
    ----------
    steps
        Optimizer steps.
    batch_size
        Images per step.
    lr
        Peak learning rate (AdamW).
    seed
        Seeds the weights, the batch order and the augmentations.
    augment
        Augmentations to apply.
    device
        ``"cpu"``, ``"cuda"`` or ``None`` for auto-detect.
    crop
        Train on random square crops of this side (a multiple of 32; ``None``: whole
        images). Targets come from the whole image, so an object cut by the crop still
        points at its true center; crops make a step cheaper on the CPU.
    """

    steps: int = 300
    batch_size: int = 8
    lr: float = 3e-3
    seed: int = 0
    augment: frozenset[Augmentation] = frozenset()
    device: str | None = None
    crop: int | None = None

    def __post_init__(self) -> None:
        if self.crop is not None and (self.crop <= 0 or self.crop % 32):
            raise ConfigError(f"crop must be a positive multiple of 32, got {self.crop!r}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True)
class TrainResult:
    """A trained network and its loss per step."""

    network: SegmentationNetwork
    losses: tuple[float, ...]
    device: str


def _flip(batch: dict[str, Tensor], dim_img: int, rows: Tensor, axis: int) -> None:
    """Flip the selected ``rows`` of every tensor along one spatial axis (0: y, 1: x)."""
    if not bool(rows.any()):
        return
    for key, tensor in batch.items():
        spatial = tensor.dim() - 2 + axis if key != "image" else dim_img + axis
        part = tensor[rows].flip(spatial)
        if key == "offset":
            part[:, axis] = -part[:, axis]
        tensor[rows] = part


def _crop(batch: dict[str, Tensor], crop: int, rng: np.random.Generator) -> dict[str, Tensor]:
    """Cut one random ``crop``-pixel square (aligned to the output stride) from the batch."""
    side = batch["semantic"].shape[-1]
    cells = (side - crop) // OUTPUT_STRIDE
    y, x = (int(v) * OUTPUT_STRIDE for v in rng.integers(0, cells + 1, size=2))
    c, cy, cx = crop // OUTPUT_STRIDE, y // OUTPUT_STRIDE, x // OUTPUT_STRIDE
    return {
        "image": batch["image"][:, y : y + crop, x : x + crop].contiguous(),
        "semantic": batch["semantic"][:, y : y + crop, x : x + crop].contiguous(),
        "center": batch["center"][:, cy : cy + c, cx : cx + c].contiguous(),
        "offset": batch["offset"][:, :, cy : cy + c, cx : cx + c].contiguous(),
        "foreground": batch["foreground"][:, cy : cy + c, cx : cx + c].contiguous(),
    }


def _gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    xs = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(xs**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.conv2d(
        F.pad(images, (radius, radius, 0, 0), mode="reflect"),
        kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
        groups=c,
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="reflect"),
        kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
        groups=c,
    )


def photometric(
    images: Tensor, augment: frozenset[Augmentation], rng: np.random.Generator
) -> Tensor:
    """Apply the photometric augmentations in ``augment``, each to a random half of the batch.

    ``images`` is a float batch ``(N, 3, H, W)`` in ``[0, 1]``; the ranges cover the
    ``segmon synth`` drift knobs at full severity.

    Examples
    --------
    >>> x = torch.full((2, 3, 8, 8), 0.5)
    >>> y = photometric(x, frozenset({Augmentation.BRIGHTNESS}), np.random.default_rng(0))
    >>> y.shape, bool((y >= 0).all() and (y <= 1).all())
    (torch.Size([2, 3, 8, 8]), True)
    """
    n = images.shape[0]

    def chosen() -> Tensor:
        return torch.from_numpy(rng.random(n) < 0.5).to(images.device).view(n, 1, 1, 1)

    def uniform(low: float, high: float) -> Tensor:
        values = torch.from_numpy(rng.uniform(low, high, n).astype(np.float32))
        return values.to(images.device).view(n, 1, 1, 1)

    out = images
    if Augmentation.BLUR in augment:
        blurred = _gaussian_blur(out, float(rng.uniform(0.5, 3.0)))
        out = torch.where(chosen(), blurred, out)
    if Augmentation.CONTRAST in augment:
        mean = out.mean(dim=(2, 3), keepdim=True)
        out = torch.where(chosen(), mean + (out - mean) * uniform(0.25, 1.3), out)
    if Augmentation.BRIGHTNESS in augment:
        out = torch.where(chosen(), out + uniform(-0.25, 0.45), out)
    if Augmentation.NOISE in augment:
        generator = torch.Generator(device="cpu").manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(out.shape, generator=generator).to(out.device)
        out = torch.where(chosen(), out + noise * uniform(0.0, 0.18), out)
    return out.clamp(0.0, 1.0)


def training_loss(network: SegmentationNetwork, images: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Return the Panoptic-DeepLab loss of one batch (see the module docstring)."""
    semantic, center, offset, _ = network(images)
    semantic = F.interpolate(
        semantic.float(), size=images.shape[-2:], mode="bilinear", align_corners=False
    )
    pixel_loss = F.cross_entropy(semantic, batch["semantic"].long(), reduction="none").flatten()
    hard = max(1, int(HARD_PIXEL_FRACTION * pixel_loss.numel()))
    loss_semantic = torch.topk(pixel_loss, hard, sorted=False).values.mean()
    loss_center = F.mse_loss(center.float()[:, 0], batch["center"])
    fg = batch["foreground"].unsqueeze(1).float()
    loss_offset = (F.l1_loss(offset.float(), batch["offset"], reduction="none") * fg).sum() / (
        2 * fg.sum().clamp(min=1.0)
    )
    return loss_semantic + CENTER_WEIGHT * loss_center + OFFSET_WEIGHT * loss_offset


def train_network(
    data: TrainingData,
    config: NetworkConfig,
    options: TrainOptions,
    progress: Callable[[int, float], None] | None = None,
    initial: SegmentationNetwork | None = None,
) -> TrainResult:
    """Train a fresh network on ``data``.

    Parameters
    ----------
    data
        Images and targets (resized to ``config.input_size``).
    config
        Architecture.
    options
        Steps, batch size, learning rate, seed, augmentations, device.
    progress
        Called after each step with the number of steps done and the step's loss.
    initial
        Start from these weights (fine-tuning) instead of a fresh network; its config
        must equal ``config``.

    Returns
    -------
    TrainResult
        The network in eval mode on the CPU, the loss of every step and the device used.

    Raises
    ------
    ConfigError
        If the data's image size or categories disagree with ``config``.
    """
    if data.images.shape[1] != config.input_size:
        raise ConfigError(
            f"training images are {data.images.shape[1]} px, the network expects "
            f"{config.input_size} px"
        )
    if data.categories != config.categories:
        raise ConfigError(f"data categories {data.categories} != model {config.categories}")
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    if initial is not None and initial.config != config:
        raise ConfigError(f"initial weights are {initial.config}, not {config}")
    network = SegmentationNetwork(config)
    if initial is not None:
        network.load_state_dict(initial.state_dict())
    network = network.to(device)
    use_amp = device.type == "cuda"
    if use_amp:
        network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack memory_format
    optimizer = torch.optim.AdamW(network.parameters(), lr=options.lr, weight_decay=1e-4)
    warmup = max(1, options.steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, options.steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    tensors = {
        "image": torch.from_numpy(data.images),
        "semantic": torch.from_numpy(data.targets.semantic),
        "center": torch.from_numpy(data.targets.center),
        "offset": torch.from_numpy(data.targets.offset),
        "foreground": torch.from_numpy(data.targets.foreground),
    }
    n = len(data)
    order = rng.permutation(n)
    cursor = 0
    losses: list[float] = []
    network.train()
    for step in range(options.steps):
        if cursor + options.batch_size > n:
            order, cursor = rng.permutation(n), 0
        index = torch.from_numpy(order[cursor : cursor + options.batch_size])
        cursor += options.batch_size
        batch = {key: t[index] for key, t in tensors.items()}
        if options.crop is not None and options.crop < config.input_size:
            batch = _crop(batch, options.crop, rng)
        if Augmentation.FLIP in options.augment:
            for axis in (0, 1):
                rows = torch.from_numpy(rng.random(len(index)) < 0.5)
                _flip(batch, 1, rows, axis)  # image is (N, H, W, 3): spatial dims 1, 2
        images = batch.pop("image").to(device).permute(0, 3, 1, 2).float().contiguous() / 255.0
        if options.augment & set(PHOTOMETRIC):
            images = photometric(images, options.augment, rng)
        if use_amp:
            images = images.contiguous(memory_format=torch.channels_last)
        batch = {key: t.to(device) for key, t in batch.items()}
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            loss = training_loss(network, images, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # untyped in torch
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, losses[-1])
    network = network.to("cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]  # stubs lack memory_format
    return TrainResult(network=network, losses=tuple(losses), device=device.type)
