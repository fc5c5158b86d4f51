from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors._typing import ImageArray
from monitor.errors import InvalidInputError
from monitor.model.adapters import BuiltinModel
from monitor.model.export import export_onnx, export_torchscript
from monitor.model.loading import load_model
from monitor.model.protocol import InstancePrediction, SegmentationModel
from tests.support.tiny_model import scene_images


@pytest.fixture(scope="module")
def production() -> BuiltinModel:
    model = load_model("production", device="cpu", batch_size=2)
    assert isinstance(model, BuiltinModel)
    return model


@pytest.fixture(scope="module")
def images() -> list[ImageArray]:
    scenes = scene_images(3)
    odd = np.ascontiguousarray(np.repeat(scenes[0][:200:2], 3, axis=1)[:, :300])  # 100 x 300
    return [*scenes, odd]


def _check(instances: list[InstancePrediction], shape: tuple[int, int], k: int) -> None:
    for inst in instances:
        assert inst.mask.shape == shape and inst.mask.dtype == np.bool_ and inst.mask.any()
        assert 1 <= inst.category_id <= k
        assert 0.0 <= inst.score <= 1.0
        assert inst.class_scores.shape == (k,) and inst.class_scores.dtype == np.float32
        assert abs(float(inst.class_scores.sum()) - 1.0) < 1e-4
        assert inst.category_id == int(inst.class_scores.argmax()) + 1
    masks = [inst.mask for inst in instances]
    if masks:
        assert np.sum(masks, axis=0).max() == 1  # instances never overlap


@pytest.mark.parametrize("name", ["production", "reference"])
def test_bundled_models_predict_instances_at_each_images_size(
    name: str, images: list[ImageArray]
) -> None:
    model = load_model(name, device="cpu")
    assert isinstance(model, SegmentationModel)
    assert model.name.startswith(f"builtin:{name}@") and len(model.name.split("@")[1]) == 12
    predictions = model.predict(images)
    assert len(predictions) == len(images)
    for image, instances in zip(images, predictions, strict=True):
        _check(instances, image.shape[:2], len(model.categories))
    assert sum(len(p) for p in predictions[:3]) >= 3


def test_predict_is_deterministic_and_independent_of_batching(
    production: BuiltinModel, images: list[ImageArray]
) -> None:
    first = production.predict(images)
    again = production.predict(images)
    for a, b in zip(first, again, strict=True):
        assert [i.score for i in a] == [i.score for i in b]
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a, b, strict=True))
    single = load_model("production", device="cpu", batch_size=1).predict(images)
    assert [len(p) for p in single] == [len(p) for p in first]


def test_embeddings_are_deterministic_with_one_vector_per_mask(
    production: BuiltinModel, images: list[ImageArray]
) -> None:
    masks = [[inst.mask for inst in p] for p in production.predict(images)]
    empty = np.zeros(images[0].shape[:2], dtype=bool)
    masks[0] = [*masks[0], empty]
    one = production.embed(images, masks)
    two = production.embed(images, masks)
    dim = production.embedding_dim
    assert one.images.shape == (len(images), dim) and one.images.dtype == np.float32
    assert np.array_equal(one.images, two.images)
    for got, again, given in zip(one.instances, two.instances, masks, strict=True):
        assert got.shape == (len(given), dim)
        assert np.array_equal(got, again)
    assert np.array_equal(one.instances[0][-1], one.images[0])  # empty mask: image vector
    if len(masks[0]) > 2:  # different objects, different vectors
        assert not np.allclose(one.instances[0][0], one.instances[0][1])


def test_embed_rejects_masks_of_the_wrong_size(
    production: BuiltinModel, images: list[ImageArray]
) -> None:
    with pytest.raises(InvalidInputError, match="mask of image 0"):
        production.embed(images[:1], [[np.zeros((5, 5), dtype=bool)]])
    with pytest.raises(InvalidInputError, match="1 images but 2"):
        production.embed(images[:1], [[], []])


def _same_predictions(a: list[InstancePrediction], b: list[InstancePrediction]) -> None:
    assert [i.category_id for i in a] == [i.category_id for i in b]
    for x, y in zip(a, b, strict=True):
        iou = (x.mask & y.mask).sum() / max((x.mask | y.mask).sum(), 1)
        assert iou > 0.99
        assert abs(x.score - y.score) < 1e-3


def test_torchscript_export_predicts_what_the_model_predicts(
    production: BuiltinModel, images: list[ImageArray], tmp_path: Path
) -> None:
    path = export_torchscript(production.network, tmp_path / "production.pt")
    scripted = load_model(str(path), device="cpu")
    assert scripted.name.startswith("torchscript:production@")
    assert scripted.categories == production.categories
    expected = production.predict(images)
    assert sum(len(p) for p in expected) > 0
    for a, b in zip(expected, scripted.predict(images), strict=True):
        _same_predictions(a, b)
    emb = scripted.embed(images[:1], [[]])
    assert np.allclose(emb.images, production.embed(images[:1], [[]]).images, atol=1e-5)


def test_onnx_export_predicts_what_the_model_predicts(
    production: BuiltinModel, images: list[ImageArray], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime (extra segmon[onnx]) is not installed")
    pytest.importorskip("onnx", reason="onnx (extra segmon[onnx]) is not installed")
    path = export_onnx(production.network, tmp_path / "production.onnx")
    onnx_model = load_model(str(path), device="cpu", batch_size=3)
    assert onnx_model.name.startswith("onnx:production@")
    for a, b in zip(production.predict(images), onnx_model.predict(images), strict=True):
        _same_predictions(a, b)
