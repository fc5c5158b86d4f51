"""classes_map: rename, merge, drop; unmapped classes ignored and counted when asked."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.errors import ConfigError
from monitor.model.classmap import ClassMappedModel
from monitor.model.protocol import CountsIgnored, InstancePrediction
from tests.support.plugin_model import ColourModel


class Coco4:
    name = "coco4"
    categories: tuple[str, ...] = ("person", "car", "truck", "kite")

    def predict(self, images: object) -> list[list[InstancePrediction]]:
        mask = np.ones((2, 2), dtype=bool)
        scores = np.array([0.1, 0.4, 0.3, 0.2], dtype=np.float32)
        return [[InstancePrediction(c, 0.8, mask, scores) for c in (1, 2, 3, 4)]] * 2


IMAGES = [np.zeros((2, 2, 3), np.uint8)] * 2


def test_rename_merge_and_drop() -> None:
    mapped = ClassMappedModel(
        Coco4(), {"person": "human", "car": "vehicle", "truck": "vehicle", "kite": None}
    )
    assert isinstance(mapped, CountsIgnored)
    assert mapped.categories == ("human", "vehicle") and mapped.left_out == ("kite",)
    found = mapped.predict(IMAGES)
    assert [[i.category_id for i in f] for f in found] == [[1, 2, 2], [1, 2, 2]]
    # merged classes add their scores; the dropped class's share is renormalised away
    assert found[0][0].class_scores.tolist() == pytest.approx([0.125, 0.875])
    assert mapped.ignored == {"kite": 2}
    assert mapped.name.startswith("coco4+map") and mapped.name != ClassMappedModel(Coco4(), {}).name


def test_unmapped_classes_are_ignored_only_when_asked() -> None:
    keep = {"person", "car"}
    mapped = ClassMappedModel(Coco4(), {}, keep=keep)
    assert mapped.categories == ("person", "car")
    assert [len(f) for f in mapped.predict(IMAGES)] == [2, 2]
    assert mapped.ignored == {"truck": 2, "kite": 2}


def test_mistakes_are_named() -> None:
    with pytest.raises(
        ConfigError, match="classes_map names 'persn', which is not a class of model 'coco4'"
    ):
        ClassMappedModel(Coco4(), {"persn": "human"}, where="models.reference")
    with pytest.raises(ConfigError, match="leave no class"):
        ClassMappedModel(ColourModel(), {}, keep={"star"})
