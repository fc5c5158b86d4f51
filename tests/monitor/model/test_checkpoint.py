from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from monitor.errors import InvalidInputError, UnsafeFormatError
from monitor.model.checkpoint import load_checkpoint, save_checkpoint
from monitor.model.loading import load_model
from monitor.model.network import SegmentationNetwork


@pytest.mark.parametrize(
    "name", ["weights.pt", "weights.pth", "weights.safetensors", "weights.bin"]
)
def test_pickle_checkpoints_are_refused(
    tiny_network: SegmentationNetwork, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    torch.save(tiny_network.state_dict(), path)
    with pytest.raises(UnsafeFormatError, match=name):
        load_model(str(path))


def test_safetensors_without_segmon_metadata_is_refused(
    tiny_network: SegmentationNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_network.state_dict().items()}, str(path))
    with pytest.raises(InvalidInputError, match="without segmon metadata"):
        load_model(str(path))


def test_checkpoint_round_trip_keeps_outputs(
    tiny_network: SegmentationNetwork, tmp_path: Path
) -> None:
    path = save_checkpoint(tiny_network, tmp_path / "tiny.safetensors", {"steps": 1})
    loaded, training = load_checkpoint(path)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(tiny_network(x), loaded(x), strict=True):
            assert torch.equal(a, b)
    assert training == {"steps": 1}


def test_checkpoints_are_written_as_safetensors_only(
    tiny_network: SegmentationNetwork, tmp_path: Path
) -> None:
    with pytest.raises(UnsafeFormatError, match="tiny.pt"):
        save_checkpoint(tiny_network, tmp_path / "tiny.pt")
