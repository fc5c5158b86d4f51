"""Decoding heads into instances: the grouped decoder against a plain one-centre-at-a-time one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from monitor.model.adapters import BuiltinModel
from monitor.model.decode import DecodeOptions, decode_instances
from monitor.model.loading import load_model
from monitor.model.network import OUTPUT_STRIDE, fold_batch_norms
from monitor.model.runtime import prepare_batch
from tests.support.tiny_model import scene_images

Plain = tuple[int, float, np.ndarray, np.ndarray]


def plain_decode(
    semantic: torch.Tensor, center: torch.Tensor, offset: torch.Tensor, size: tuple[int, int]
) -> list[Plain]:
    """Panoptic-DeepLab decoding written out directly: square NMS, argmax, a pass per centre."""
    options = DecodeOptions()
    height, width = size
    side = semantic.shape[-1] * OUTPUT_STRIDE
    sy, sx = height / side, width / side
    pad = options.nms_kernel // 2
    pooled = F.max_pool2d(center.unsqueeze(0), options.nms_kernel, stride=1, padding=pad)[0]
    keep = (center == pooled) & (center > options.center_threshold)
    heat = center[keep]
    cy, cx = torch.nonzero(keep[0], as_tuple=True)
    order = torch.argsort(heat, descending=True, stable=True)[: options.top_k]
    coords = (torch.stack([cy, cx], 1).float() * OUTPUT_STRIDE + 1.5)[order]
    heat = heat[order]
    if coords.shape[0] == 0:
        return []
    coords = (coords + 0.5) * torch.tensor([sy, sx]) - 0.5
    up = F.interpolate(semantic[None], size=size, mode="bilinear", align_corners=False)[0]
    probs = torch.softmax(up, dim=0)
    ys, xs = torch.nonzero(probs.argmax(dim=0) > 0, as_tuple=True)
    if ys.numel() == 0:
        return []
    moved = F.interpolate(offset[None], size=size, mode="bilinear", align_corners=False)[0]
    votes = torch.stack([ys + moved[0, ys, xs] * sy, xs + moved[1, ys, xs] * sx], 1)
    owner = torch.cdist(votes, coords).argmin(dim=1)
    found: list[Plain] = []
    for k in range(coords.shape[0]):
        members = owner == k
        if int(members.sum()) < options.min_area:
            continue
        scores = probs[1:, ys, xs][:, members].mean(dim=1)
        scores = scores / scores.sum()
        top = int(scores.argmax())
        mask = np.zeros(size, dtype=bool)
        mask[ys[members].numpy(), xs[members].numpy()] = True
        found.append((top + 1, float(heat[k].clamp(0, 1) * scores[top]), mask, scores.numpy()))
    return sorted(found, key=lambda f: -f[1])


@pytest.mark.parametrize("size", [(256, 256), (90, 200)])
def test_the_decoder_finds_what_the_plain_decoder_finds(size: tuple[int, int]) -> None:
    model = load_model("production", device="cpu")
    assert isinstance(model, BuiltinModel)
    images = [np.ascontiguousarray(i[: size[0], : size[1]]) for i in scene_images(4)]
    with torch.inference_mode():
        sem, cen, off, _ = model.network(prepare_batch(images, model.input_size, model.device))
    total = 0
    for i in range(len(images)):
        got = decode_instances(sem[i], cen[i], off[i], size)
        want = plain_decode(sem[i], cen[i], off[i], size)
        assert [g.category_id for g in got] == [w[0] for w in want]
        assert all(np.array_equal(g.mask, w[2]) for g, w in zip(got, want, strict=True))
        assert [g.score for g in got] == pytest.approx([w[1] for w in want], abs=1e-6)
        for g, w in zip(got, want, strict=True):
            assert np.allclose(g.class_scores, w[3], atol=1e-6)
        total += len(got)
    assert total >= 3


def test_the_folded_network_computes_the_networks_heads() -> None:
    model = load_model("reference", device="cpu")
    assert isinstance(model, BuiltinModel)
    batch = prepare_batch(scene_images(2), model.input_size, model.device)
    with torch.inference_mode():
        want = model.network(batch)
        got = model.run_network(batch)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-3, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model._folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.network.modules())  # as saved
    assert "stem.1.running_mean" not in fold_batch_norms(model.network).state_dict()
