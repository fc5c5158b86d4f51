from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from monitor.masks import MaskError, MaskProblem, decode_counts, encode_mask, to_compressed


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
