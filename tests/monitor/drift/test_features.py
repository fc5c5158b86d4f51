"""Feature arrays: per-object features carry the image of every row."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.drift.features import FeatureKey, FeatureSet, Population, read_features
from monitor.drift.job import resolve_reference
from monitor.errors import InvalidInputError
from tests.support.drift_scenes import CLASSES, HOUR, DriftScenes

FAMILIES = ("instance_embedding", "mask_geometry", "prediction", "image_properties")
PER_OBJECT = {
    ("instance_embedding", "embedding"),
    ("mask_geometry", "area"),
    ("mask_geometry", "aspect"),
    ("mask_geometry", "boundary"),
    ("prediction", "class_mix"),
    ("prediction", "score"),
}


@pytest.mark.parametrize("side", ["production", "holdout"])
def test_per_object_rows_carry_their_image(sqlite_drift_scenes: DriftScenes, side: str) -> None:
    if side == "production":
        sqlite_drift_scenes.production(12, HOUR)
    else:
        sqlite_drift_scenes.holdout("golden", 12)
    with sqlite_drift_scenes.sessions() as session:
        pop = (
            Population("1h", start=HOUR[0], end=HOUR[1])
            if side == "production"
            else resolve_reference(session, "golden")
        )
        features = read_features(session, pop, FAMILIES, CLASSES, "backbone")
    assert features.n_images == 12
    per_object = {k for k in features.arrays if (k.family, k.feature) in PER_OBJECT}
    assert set(features.groups) == per_object
    assert {k.feature for k in per_object} >= {"area", "embedding", "class_mix"}
    for key, images in features.groups.items():
        assert images.shape == (features.arrays[key].shape[0],)
        # Every image holds 1 or 2 objects of each class (drift_scenes).
        assert np.unique(images).size == 12
        assert features.arrays[key].shape[0] > 12
    class_mix = features.groups[FeatureKey("prediction", "class_mix", "", "categorical")]
    assert np.bincount(np.unique(class_mix, return_inverse=True)[1]).min() >= len(CLASSES)


def test_feature_set_refuses_image_ids_that_do_not_match_the_rows() -> None:
    features = FeatureSet(n_images=2)
    key = FeatureKey("mask_geometry", "area", "box", "numeric")
    with pytest.raises(InvalidInputError, match="3 image ids for 2 rows"):
        features.add(key, np.ones(2), np.arange(3))
