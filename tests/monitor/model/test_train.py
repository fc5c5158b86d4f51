from __future__ import annotations

import numpy as np
import pytest
import torch

from monitor.errors import ConfigError
from monitor.model.data import TrainingData, make_targets
from monitor.model.network import NetworkConfig
from monitor.model.train import Augmentation, TrainOptions, photometric, train_network


def test_a_few_steps_lower_the_loss(tiny_data: TrainingData) -> None:
    config = NetworkConfig(categories=tiny_data.categories, width=8, input_size=64)
    options = TrainOptions(steps=25, batch_size=4, lr=5e-3, seed=0, device="cpu")
    result = train_network(tiny_data, config, options)
    losses = result.losses
    assert len(losses) == 25
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    # fine-tuning starts where the training ended, not from scratch
    again = train_network(
        tiny_data, config, TrainOptions(steps=2, batch_size=4), initial=result.network
    )
    assert again.losses[0] < 0.7 * np.mean(losses[:5])
    wider = NetworkConfig(categories=tiny_data.categories, width=16, input_size=64)
    with pytest.raises(ConfigError, match="initial weights"):
        train_network(tiny_data, wider, TrainOptions(steps=1), initial=result.network)


def test_training_is_seeded(tiny_data: TrainingData) -> None:
    config = NetworkConfig(categories=tiny_data.categories, width=4, input_size=64)
    augment = frozenset(Augmentation)
    runs = [
        train_network(
            tiny_data, config, TrainOptions(steps=3, batch_size=4, seed=s, augment=augment)
        ).losses
        for s in (5, 5, 6)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_training_refuses_images_of_another_size(tiny_data: TrainingData) -> None:
    config = NetworkConfig(categories=tiny_data.categories, width=4, input_size=128)
    with pytest.raises(ConfigError, match="64 px"):
        train_network(tiny_data, config, TrainOptions(steps=1))


def test_targets_point_every_cell_at_its_instance_center() -> None:
    ids = np.zeros((32, 32), dtype=np.int32)
    ids[4:12, 16:30] = 1
    ids[20:28, 0:8] = 2
    semantic, center, offset, fg = make_targets(ids, np.array([2, 4]))
    assert set(np.unique(semantic).tolist()) == {0, 2, 4}
    cells = np.arange(8) * 4 + 1.5
    ys, xs = np.nonzero(fg)
    voted = np.stack([cells[ys] + offset[0, ys, xs], cells[xs] + offset[1, ys, xs]], axis=1)
    expected = {(7.5, 22.5), (23.5, 3.5)}
    assert {tuple(v) for v in voted.round(3).tolist()} == expected
    assert center.max() <= 1.0 and np.isclose(
        center.max(), center[np.unravel_index(center.argmax(), center.shape)]
    )


def test_photometric_changes_pixels_and_stays_in_range() -> None:
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = photometric(
        images, frozenset(Augmentation) - {Augmentation.FLIP}, np.random.default_rng(1)
    )
    assert out.shape == images.shape
    assert not torch.equal(out, images)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
