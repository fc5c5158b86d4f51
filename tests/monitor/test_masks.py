from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from monitor.masks import (
    MaskError,
    MaskProblem,
    decode_counts,
    decode_mask_reduced,
    encode_mask,
    reduced_shape,
    to_compressed,
)
from tests.support.paths import REPO


@pytest.mark.parametrize("seed", range(5))
def test_decode_counts_matches_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 400, 2))
        mask = rng.random((h, w)) < rng.random()
        if rng.random() < 0.3:
            mask[:] = rng.random() < 0.5
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        runs = decode_counts(rle["counts"])
        rebuilt = np.repeat(np.arange(runs.size) % 2, runs).reshape(w, h).T
        assert (rebuilt == mask).all()


def test_all_three_coco_forms_give_the_same_mask() -> None:
    mask = np.zeros((10, 12), bool)
    mask[2:6, 3:9] = True
    compressed = encode_mask(mask)
    runs = decode_counts(compressed.counts).tolist()
    from_uncompressed = to_compressed({"size": [10, 12], "counts": runs}, 10, 12)
    from_polygon = to_compressed([[3, 2, 9, 2, 9, 6, 3, 6]], 10, 12)
    assert from_uncompressed.counts == compressed.counts
    assert from_polygon.area == int(
        mask_utils.area(
            mask_utils.merge(mask_utils.frPyObjects([[3, 2, 9, 2, 9, 6, 3, 6]], 10, 12))
        )
    )


@pytest.mark.parametrize(
    ("segmentation", "problem", "words"),
    [
        ({"size": [4, 5], "counts": ""}, MaskProblem.INVALID_RLE, "cover 0 pixels"),
        ({"size": [4, 5], "counts": "zz"}, MaskProblem.INVALID_RLE, "'z'"),
        ({"size": [4, 5], "counts": "5g"}, MaskProblem.INVALID_RLE, "middle of a number"),
        ({"size": [4, 5], "counts": [5, -2, 17]}, MaskProblem.INVALID_RLE, "negative run"),
        ({"size": [4, 5], "counts": [1, 2, 3]}, MaskProblem.INVALID_RLE, "cover 6 pixels"),
        ({"size": [4, 6], "counts": "0"}, MaskProblem.MASK_SIZE_MISMATCH, "[4, 6]"),
        ([[1, 2, 3, 4]], MaskProblem.INVALID_POLYGON, "4 coordinates"),
        ([[1, 2, 3, 4, 5, float("nan")]], MaskProblem.INVALID_POLYGON, "non-finite"),
        ([], MaskProblem.INVALID_POLYGON, "empty"),
        (42, MaskProblem.INVALID_RLE, "int"),
    ],
)
def test_bad_masks_are_named(segmentation: object, problem: MaskProblem, words: str) -> None:
    with pytest.raises(MaskError) as info:
        to_compressed(segmentation, 4, 5)
    assert info.value.problem is problem
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("segmentation", "problem", "words"),
    [
        ({"size": [4, 5], "counts": [2**70]}, MaskProblem.INVALID_RLE, "more than 4x5"),
        ({"size": [4, 5], "counts": [1.5, 18.5]}, MaskProblem.INVALID_RLE, "not an integer"),
        ({"size": [4, 5], "counts": [0] * 22}, MaskProblem.INVALID_RLE, "22 runs"),
        ({"size": [4, 5], "counts": "0\u00e9"}, MaskProblem.INVALID_RLE, "not ASCII"),
        ({"size": ["h", "w"], "counts": "0"}, MaskProblem.INVALID_RLE, "two integers"),
        ({"size": [4.0, 5.0], "counts": "0"}, MaskProblem.INVALID_RLE, "two integers"),
        ({"size": "45", "counts": "0"}, MaskProblem.INVALID_RLE, "two integers"),
        ([[1, 1, "x", 1, 4, 4]], MaskProblem.INVALID_POLYGON, "'x' is not a number"),
        ([[1, 1, True, 1, 4, 4]], MaskProblem.INVALID_POLYGON, "True is not a number"),
        ([[1, 1, 10**400, 1, 4, 4]], MaskProblem.INVALID_POLYGON, "non-finite"),
        ([[0, 0, 1e12, 0, 1e12, 1e12]], MaskProblem.INVALID_POLYGON, "x=1000000000000.0"),
        ([[0, 0, -1e12, 0, 3, 3]], MaskProblem.INVALID_POLYGON, "outside [-5.0, 10.0]"),
        ([[0, 0, 4, 0, 4, 9]], MaskProblem.INVALID_POLYGON, "y=9.0 is outside [-4.0, 8.0]"),
        ([[0, 0, 9, 0, 9, 7, 0, 7] * 60], MaskProblem.INVALID_POLYGON, "more than 100 x (4 + 5)"),
    ],
)
def test_values_pycocotools_cannot_take_are_refused_first(
    segmentation: object, problem: MaskProblem, words: str
) -> None:
    with pytest.raises(MaskError) as info:
        to_compressed(segmentation, 4, 5)
    assert info.value.problem is problem
    assert words in str(info.value), str(info.value)


def test_polygons_within_the_margin_are_accepted() -> None:
    """Vertices up to one image size outside the image are fine (clipped by pycocotools)."""
    inside = to_compressed([[-5, -4, 10, -4, 10, 8, -5, 8]], 4, 5)
    assert inside.area == 20


def test_image_sizes_beyond_32_bit_runs_are_refused() -> None:
    with pytest.raises(MaskError, match="too large for a mask"):
        to_compressed({"size": [70000, 70000], "counts": "0"}, 70000, 70000)


POLYGON_1E12 = """
import sys
from pycocotools import mask
rle = mask.frPyObjects([[0, 0, 1e12, 0, 1e12, 1e12]], 24, 32)
print(int(mask.area(mask.merge(rle))))
"""

GUARDED_1E12 = """
from monitor.masks import MaskError, to_compressed
try:
    to_compressed([[0, 0, 1e12, 0, 1e12, 1e12]], 24, 32)
except MaskError as exc:
    print(exc.problem.value)
"""


def test_polygon_of_1e12_crashes_pycocotools_but_not_segmon() -> None:
    """Reproduce the crash in a child process, then show segmon's check prevents it."""
    raw = subprocess.run(
        [sys.executable, "-c", POLYGON_1E12], capture_output=True, text=True, timeout=300
    )
    if raw.returncode >= 0:
        pytest.skip(f"this pycocotools no longer crashes on 1e12 (exit {raw.returncode})")
    assert raw.returncode == -signal.SIGSEGV
    guarded = subprocess.run(
        [sys.executable, "-c", GUARDED_1E12],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert guarded.returncode == 0, guarded.stderr
    assert guarded.stdout.strip() == "invalid_polygon"


def test_reduced_decoding_keeps_every_object() -> None:
    """A mask decoded smaller sets a cell when any pixel of its block is set."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        factor = int(rng.integers(1, 9))
        mask = rng.random((h, w)) < rng.random() * 0.2
        out_h, out_w = reduced_shape(h, w, factor)
        padded = np.zeros((out_h * factor, out_w * factor), bool)
        padded[:h, :w] = mask
        expected = padded.reshape(out_h, factor, out_w, factor).any(axis=(1, 3))
        got = decode_mask_reduced(encode_mask(mask).counts, h, w, factor)
        assert got.shape == (out_h, out_w) and (got == expected).all()
