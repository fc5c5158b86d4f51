"""From network heads to instances and embeddings, shared by every adapter of the network.

The built-in model, its TorchScript export and its ONNX export all produce the same four
stride-4 maps (semantic logits, center heatmap, offsets, feature); the steps that turn
them into instances and embeddings live here, outside the exported graphs.

Decoding (Panoptic-DeepLab): centers are local maxima of the heatmap above a threshold;
semantic logits and offsets are upsampled to the original image size; every foreground
pixel votes for the center nearest to ``pixel + offset``. An instance's class scores are
the mean semantic class probabilities over its pixels (background left out,
renormalized); its score is the center's heat times its top class probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from detectors._typing import Float32Array, MaskArray
from monitor.model.network import OUTPUT_STRIDE
from monitor.model.protocol import InstancePrediction


@dataclass(frozen=True)
class DecodeOptions:
    """Thresholds of :func:`decode_instances`.

    Parameters
    ----------
    center_threshold
        Minimum heat of a center.
    nms_kernel
        Side of the max-pool window (stride-4 cells) a center must be the maximum of.
    top_k
        At most this many centers per image.
    min_area
        Instances with fewer pixels (at the original size) are dropped.
    """

    center_threshold: float = 0.1
    nms_kernel: int = 7
    top_k: int = 64
    min_area: int = 16


def find_centers(center: Tensor, options: DecodeOptions) -> tuple[Tensor, Tensor]:
    """Return ``(coords (k, 2) as (y, x) in input pixels, heat (k,))`` of one heatmap.

    ``center`` is the ``(1, h, w)`` heatmap of one image, sorted by heat, descending.

    Examples
    --------
    >>> heat = torch.zeros(1, 8, 8); heat[0, 2, 3] = 0.9; heat[0, 6, 6] = 0.05
    >>> coords, scores = find_centers(heat, DecodeOptions())
    >>> coords.tolist(), [round(s, 3) for s in scores.tolist()]
    ([[9.5, 13.5]], [0.9])
    """
    pad, size = options.nms_kernel // 2, options.nms_kernel
    # the window's maximum, one axis at a time (the same maxima as a square pool, faster)
    rows = F.max_pool2d(center.unsqueeze(0), (1, size), stride=1, padding=(0, pad))
    pooled = F.max_pool2d(rows, (size, 1), stride=1, padding=(pad, 0))[0]
    keep = (center == pooled) & (center > options.center_threshold)
    heat = center[keep]
    ys, xs = torch.nonzero(keep[0], as_tuple=True)
    order = torch.argsort(heat, descending=True, stable=True)[: options.top_k]
    coords = torch.stack([ys, xs], dim=1).float() * OUTPUT_STRIDE + (OUTPUT_STRIDE - 1) / 2.0
    return coords[order], heat[order]


def decode_instances(
    semantic: Tensor,
    center: Tensor,
    offset: Tensor,
    image_size: tuple[int, int],
    options: DecodeOptions | None = None,
) -> list[InstancePrediction]:
    """Turn the heads of one image into instances at the image's original size.

    Parameters
    ----------
    semantic, center, offset
        ``(K+1, h, w)``, ``(1, h, w)``, ``(2, h, w)`` float maps of one image at stride 4
        of the model input (side ``4 h``); offsets in input pixels.
    image_size
        ``(H, W)`` of the original image.
    options
        Thresholds; defaults when ``None``.

    Returns
    -------
    list of InstancePrediction
        Sorted by score, descending; masks are ``(H, W)`` and disjoint.
    """
    options = options or DecodeOptions()
    semantic, center, offset = semantic.float(), center.float(), offset.float()
    height, width = image_size
    input_side = semantic.shape[-1] * OUTPUT_STRIDE
    sy, sx = height / input_side, width / input_side
    coords, heat = find_centers(center, options)
    if coords.shape[0] == 0:
        return []
    # centers from input pixel coordinates to original pixel coordinates
    coords = (coords + 0.5) * torch.tensor([sy, sx]) - 0.5
    logits = F.interpolate(
        semantic.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False
    )[0]
    probs = torch.softmax(logits, dim=0)
    foreground = probs[1:].amax(dim=0) > probs[0]  # argmax > 0: background wins ties
    ys, xs = torch.nonzero(foreground, as_tuple=True)
    if ys.numel() == 0:
        return []
    moved = F.interpolate(
        offset.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False
    )[0]
    votes = torch.stack(
        [ys.float() + moved[0, ys, xs] * sy, xs.float() + moved[1, ys, xs] * sx], dim=1
    )
    owner = torch.cdist(votes, coords).argmin(dim=1)
    # per center at once: its area, mean class probabilities (background left out), score
    k = coords.shape[0]
    areas = torch.bincount(owner, minlength=k)
    fg_probs = probs[1:, ys, xs]  # (K, n_fg)
    sums = torch.zeros(k, fg_probs.shape[0]).index_add_(0, owner, fg_probs.T)
    means = sums / areas.clamp(min=1)[:, None]
    class_scores = means / means.sum(dim=1, keepdim=True).clamp(min=1e-12)
    tops = class_scores.argmax(dim=1)
    scores = heat.clamp(0.0, 1.0) * class_scores[torch.arange(k), tops]
    # each center's pixels, grouped: one stable sort instead of a pass per center
    pixels = (ys * width + xs).numpy()
    by_owner = np.argsort(owner.numpy(), kind="stable")
    bounds = np.searchsorted(owner.numpy()[by_owner], np.arange(k + 1))
    all_scores: Float32Array = class_scores.numpy().astype(np.float32)
    found: list[InstancePrediction] = []
    for j, (area, top, score) in enumerate(
        zip(areas.tolist(), tops.tolist(), scores.tolist(), strict=True)
    ):
        if area < options.min_area:
            continue
        mask: MaskArray = np.zeros((height, width), dtype=np.bool_)
        mask.reshape(-1)[pixels[by_owner[bounds[j] : bounds[j + 1]]]] = True
        found.append(InstancePrediction(top + 1, float(score), mask, all_scores[j].copy()))
    found.sort(key=lambda inst: -inst.score)
    return found


def pool_embeddings(feature: Tensor, masks: list[MaskArray]) -> tuple[Float32Array, Float32Array]:
    """Pool one image's ``(D, h, w)`` feature map over the image and inside each mask.

    Each mask (at the original image size) is area-resized to the feature map, giving
    every cell the fraction of it the mask covers; the instance vector is the feature
    averaged with those weights, so any non-empty mask, however small, gets its own
    vector. An empty mask gets the image vector.

    Returns
    -------
    tuple
        ``image (D,)`` and ``instances (len(masks), D)``, float32.

    Examples
    --------
    >>> feature = torch.arange(8.0).view(2, 2, 2)
    >>> mask = np.zeros((4, 4), dtype=bool); mask[:2, :2] = True
    >>> image, inst = pool_embeddings(feature, [mask, np.zeros((4, 4), dtype=bool)])
    >>> image.tolist(), inst.tolist()
    ([1.5, 5.5], [[0.0, 4.0], [1.5, 5.5]])
    """
    feature = feature.float()
    image = feature.mean(dim=(1, 2))
    dim = feature.shape[0]
    if not masks:
        return image.numpy(), np.zeros((0, dim), dtype=np.float32)
    stacked = torch.from_numpy(np.stack([np.asarray(m, dtype=np.float32) for m in masks]))
    weights = F.interpolate(stacked.unsqueeze(1), size=feature.shape[-2:], mode="area")[
        :, 0
    ]  # (k, h, w)
    total = weights.sum(dim=(1, 2))
    pooled = torch.einsum("khw,dhw->kd", weights, feature) / total.clamp(min=1e-12)[:, None]
    pooled = torch.where((total > 0)[:, None], pooled, image[None, :])
    return image.numpy(), pooled.numpy().astype(np.float32)
