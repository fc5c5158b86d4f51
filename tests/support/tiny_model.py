"""A tiny generated dataset and a tiny network (fixtures, made once per session).

torch is imported when a fixture is first used, not when pytest loads this plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from detectors._typing import ImageArray
from monitor.synth import SynthConfig, generate_scenes, render_scene

if TYPE_CHECKING:
    from monitor.model.data import TrainingData
    from monitor.model.network import SegmentationNetwork

TINY_SIZE = 64


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 64 px generated scenes (annotations.json, images/)."""
    out = tmp_path_factory.mktemp("tiny_scenes")
    generate_scenes(out, SynthConfig(n_images=12, seed=3, size=TINY_SIZE))
    return out


@pytest.fixture(scope="session")
def tiny_data(tiny_scenes: Path) -> TrainingData:
    """The tiny scenes loaded for training."""
    from monitor.model.data import load_coco

    return load_coco(tiny_scenes / "annotations.json", tiny_scenes / "images", TINY_SIZE)


@pytest.fixture(scope="session")
def tiny_network(tiny_data: TrainingData) -> SegmentationNetwork:
    """An untrained but deterministic network with non-trivial batch-norm statistics."""
    import torch

    from monitor.model.network import NetworkConfig, SegmentationNetwork

    torch.manual_seed(0)
    net = SegmentationNetwork(
        NetworkConfig(categories=tiny_data.categories, width=4, input_size=TINY_SIZE)
    )
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(tiny_data.images).permute(0, 3, 1, 2).float() / 255.0)
    return net.eval()


def scene_images(n: int, seed: int = 11, size: int = 256) -> list[ImageArray]:
    """``n`` rendered scene images (no files), as the model tests feed the networks."""
    config = SynthConfig(n_images=n, seed=seed, size=size)
    return [render_scene(np.random.default_rng([seed, i, 0]), config).image for i in range(n)]
