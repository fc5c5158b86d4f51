# Vendored from openvinotoolkit/datumaro, commit 3d533b9cf8b9dd46366961fd4b070768dea59e95:
# the <mask> branch of CvatBase._parse_shape_ann in
# src/datumaro/plugins/data_formats/cvat/base.py and mask_tools.rle_to_mask in
# src/datumaro/util/mask_tools.py, joined into one function; the logic is unchanged.
# Used by the tests only, as datumaro's own CVAT mask decoder (datumaro itself is too heavy
# to install as a test dependency).
#
# Copyright (C) 2019-2023 Intel Corporation
# SPDX-License-Identifier: MIT
# Permission is hereby granted, free of charge, to any person obtaining a copy of this
# software and associated documentation files (the "Software"), to deal in the Software
# without restriction, including without limitation the rights to use, copy, modify, merge,
# publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
# to whom the Software is furnished to do so, subject to the following conditions: The
# above copyright notice and this permission notice shall be included in all copies or
# substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY
# OF ANY KIND, EXPRESS OR IMPLIED.
"""datumaro's decoder of a CVAT for images ``<mask>`` element, vendored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as pycocotools_mask


def rle_to_mask(rle_uncompressed: dict[str, Any]) -> Any:
    resulting_mask = pycocotools_mask.frPyObjects(rle_uncompressed, *rle_uncompressed["size"])
    resulting_mask = pycocotools_mask.decode(resulting_mask)
    return resulting_mask


def cvat_mask_to_image(ann: Mapping[str, str], image: Mapping[str, str]) -> Any:
    """The full-image mask of a ``<mask>`` element's attributes (``ann``) on ``image``."""
    rle = ann.get("rle")
    assert rle is not None
    mask_w, mask_h = int(ann["width"]), int(ann["height"])
    mask_l, mask_t = int(ann["left"]), int(ann["top"])
    img_w, img_h = int(image["width"]), int(image["height"])

    rle_uncompressed = {
        "counts": np.array([int(str_num) for str_num in rle.split(",")], dtype=np.uint32),
        "size": np.array([mask_w, mask_h]),
    }

    # From the manual test for the dataset exported from the CVAT 2.5,
    # the RLE encoding in the dataset has (W, H) binary 2D np.ndarray, not (H, W)
    # Therefore, we need to tranpose it to make its shape as (H, W).
    mask = rle_to_mask(rle_uncompressed).transpose()
    canvas = np.zeros(shape=[img_h, img_w], dtype=np.uint8)
    canvas[mask_t : mask_t + mask_h, mask_l : mask_l + mask_w] = mask
    return canvas
