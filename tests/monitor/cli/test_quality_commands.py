"""``segmon evaluate`` on the user's path: init, holdout import, evaluate --json, show.

Every figure is compared with pycocotools' ``COCOeval(iouType="segm")`` on the same two
files, through the command line on a fresh database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from sqlalchemy import select

from monitor.quality.documents import COCO_NAMES
from monitor.storage.engine import make_engine
from monitor.storage.schema import JobRun
from tests.support.coco_files import (
    CocoCase,
    generated_case,
    peer_fixture,
    pycocotools_stats,
    rle,
)
from tests.support.exported_models import ExportedToys
from tests.support.hosted_scenes import EXPECTED, HOSTED, fresh_workspace, invoke_json

TOL = 1e-9
COCO_ORDER = list(COCO_NAMES.values())


def segmon(cwd: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMON_")}
    env["SEGMON_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.lstrip().startswith(("{", "[")) else None


def evaluate_files(
    tmp_path: Path, database_url: str, gt: Path, results: Path, images: Path | None = None
) -> dict[str, Any]:
    """init --categories-from, holdout import, evaluate --predictions --json: the result."""
    ok(segmon(tmp_path, database_url, "init", "--categories-from", str(gt), "--json"))
    source = ["--images", str(images)] if images else ["--no-images"]
    ok(
        segmon(
            tmp_path, database_url, "holdout", "import", str(gt), *source, "--name", "h", "--json"
        )
    )
    doc = ok(
        segmon(
            tmp_path,
            database_url,
            "evaluate",
            "--holdout",
            "h",
            "--predictions",
            str(results),
            "--json",
        )
    )
    [result] = doc["results"]
    assert isinstance(result, dict)
    return result


def coco_figures(result: dict[str, Any]) -> list[float]:
    return [-1.0 if result["coco"][name] is None else result["coco"][name] for name in COCO_ORDER]


def assert_equal_to_pycocotools(result: dict[str, Any], gt: Path, results: Path) -> float:
    expected = pycocotools_stats(gt, results)
    got = coco_figures(result)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    return float(np.max(np.abs(np.subtract(got, expected))))


@pytest.mark.parametrize(
    ("seed", "options"),
    [
        (0, {}),
        (1, {"with_boxes": True}),
        (2, {"zero_based": False, "many": True}),
        (3, {"many": True, "with_boxes": True}),
    ],
)
def test_generated_traps_equal_pycocotools_through_the_cli(
    tmp_path: Path, database_url: str, seed: int, options: dict[str, bool]
) -> None:
    gt, results = generated_case(seed, **options).write(tmp_path / "files")
    result = evaluate_files(tmp_path, database_url, gt, results)
    assert_equal_to_pycocotools(result, gt, results)
    assert result["unknown_category_predictions"] == 0


def test_ties_across_images_follow_the_file_ids_not_the_file_order(
    tmp_path: Path, database_url: str
) -> None:
    """Two images listed as id 2 then 1; one tied prediction each (FP on 1, TP on 2)."""
    square = np.zeros((20, 20), dtype=bool)
    square[2:6, 2:6] = True
    elsewhere = np.zeros((20, 20), dtype=bool)
    elsewhere[12:16, 12:16] = True
    case = CocoCase(
        gt={
            "images": [
                {"id": 2, "file_name": "b.png", "width": 20, "height": 20},
                {"id": 1, "file_name": "a.png", "width": 20, "height": 20},
            ],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {
                    "id": i,
                    "image_id": i,
                    "category_id": 1,
                    "segmentation": rle(square),
                    "area": 16.0,
                    "bbox": [2, 2, 4, 4],
                    "iscrowd": 0,
                }
                for i in (1, 2)
            ],
        },  # fmt: skip
        results=[
            {"image_id": 1, "category_id": 1, "segmentation": rle(elsewhere), "score": 0.5},
            {"image_id": 2, "category_id": 1, "segmentation": rle(square), "score": 0.5},
        ],
    )
    gt, results = case.write(tmp_path / "files")
    result = evaluate_files(tmp_path, database_url, gt, results)
    assert result["coco"]["AP"] == pytest.approx(0.25247524752475, abs=1e-12)
    assert_equal_to_pycocotools(result, gt, results)


def test_more_than_100_predictions_of_one_class_on_one_image(tmp_path: Path) -> None:
    square = np.zeros((10, 10), dtype=bool)
    square[2:6, 2:6] = True
    case = CocoCase(
        gt={
            "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {
                    "id": 1,
                    "image_id": 1,
                    "category_id": 1,
                    "segmentation": rle(square),
                    "area": 16.0,
                    "bbox": [2, 2, 4, 4],
                    "iscrowd": 0,
                }
            ],
        },  # fmt: skip
        results=[
            {"image_id": 1, "category_id": 1, "segmentation": rle(square), "score": 1.0 - i / 1000}
            for i in range(101)
        ],
    )
    gt, results = case.write(tmp_path / "files")
    result = evaluate_files(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", gt, results)
    assert result["coco"]["AP"] == 1.0
    assert_equal_to_pycocotools(result, gt, results)


def test_json_holds_every_stored_figure_and_show_prints_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    gt, results = generated_case(5).write(tmp_path / "files")
    result = evaluate_files(tmp_path, url, gt, results)
    assert list(result["coco"]) == COCO_ORDER
    with make_engine(url).connect() as connection:  # the row names the run that wrote it
        job = connection.execute(select(JobRun.job).where(JobRun.id == result["run_id"])).scalar()
    assert job == "evaluate"
    assert {c["name"] for c in result["classes"]} == {f"class{k}" for k in range(4)}
    row = result["classes"][0]
    for key in (
        "mean_iou",
        "precision",
        "recall",
        "f1",
        "false_positives_per_image",
        "misses",
        "ap",
    ):
        assert key in row
    assert set(result["recall_by_size"]) == {"small", "medium", "large"}
    confusion = result["confusion"]  # rows: ground-truth class; columns: + "missed"
    assert len(confusion["counts"]) == len(confusion["category_ids"])
    assert {len(row) for row in confusion["counts"]} == {len(confusion["category_ids"]) + 1}
    shown = ok(
        segmon(tmp_path, url, "evaluate", "show", str(result["quality_result_id"]), "--json")
    )
    assert shown == result
    newest = ok(segmon(tmp_path, url, "evaluate", "show", "--json"))
    assert newest["quality_result_id"] == result["quality_result_id"]
    human = segmon(tmp_path, url, "evaluate", "show")
    assert human.returncode == 0 and "APm" in human.stdout and "recall by size" in human.stdout
    for figure in result["coco"].values():
        if figure is not None and figure not in (0.0, 1.0):
            assert str(figure) not in human.stdout  # people get rounded figures
    missing = segmon(tmp_path, url, "evaluate", "show", "999")
    assert missing.returncode == 2 and "999" in missing.stderr


def test_unknown_category_ids_are_counted_and_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    case = generated_case(6)
    for r in case.results[:3]:
        r["category_id"] = 77
    gt, results = case.write(tmp_path / "files")
    result = evaluate_files(tmp_path, url, gt, results)
    assert result["unknown_category_predictions"] == 3
    human = segmon(tmp_path, url, "evaluate", "--holdout", "h", "--predictions", str(results))
    assert human.returncode == 0
    assert "3 predictions" in human.stderr and "category ids" in human.stderr


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        (lambda c: c.gt["annotations"][0].pop("segmentation"), "segmentation"),
        (lambda c: c.gt["annotations"][0].update(category_id="one"), "category_id"),
        (lambda c: c.gt["images"][0].pop("width"), "width"),
        (lambda c: c.results[0].pop("category_id"), "category_id"),
        (lambda c: c.results[0].pop("segmentation"), "segmentation"),
        (lambda c: c.results[0].update(segmentation={"size": [3, 3], "counts": "9"}), "[3, 3]"),
        (lambda c: c.results[0].update(image_id=4242), "4242"),
        (lambda c: c.results[0].update(score=float("nan")), "nan"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_value(
    tmp_path: Path, breakage: Any, named: str
) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    case = generated_case(7)
    breakage(case)
    gt, results = case.write(tmp_path / "files")
    ok(segmon(tmp_path, url, "init", "--categories-from", str(gt)))
    steps = [
        ["holdout", "import", str(gt), "--no-images", "--name", "h"],
        ["evaluate", "--holdout", "h", "--predictions", str(results)],
    ]
    for step in steps:
        done = segmon(tmp_path, url, *step)
        if done.returncode != 0:
            assert done.returncode == 2, done.stderr
            assert "Traceback" not in done.stderr
            assert len(done.stderr.strip().splitlines()) <= 3 and named in done.stderr
            return
    pytest.fail("the broken file was accepted")


def test_the_holdout_needs_images_or_no_images(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    gt, _ = generated_case(8).write(tmp_path / "files")
    ok(segmon(tmp_path, url, "init", "--categories-from", str(gt)))
    done = segmon(tmp_path, url, "holdout", "import", str(gt), "--name", "h")
    assert done.returncode == 2 and "--no-images" in done.stderr


# Peer projects' own fixtures (not committed; see tests/support/coco_files.py).

FASTER_VAL2014 = [  # faster-coco-eval tests/test_cocoapi_fake_data.py, segm, places=10
    0.3195452758576433, 0.5622883972521636, 0.29892653412086784, 0.3873740315997838,
    0.31018272403369485, 0.3269339071005138, 0.2682297225711534, 0.41544868114906375,
    0.4168394992198818, 0.4694498622754236, 0.37675922666197265, 0.3814715099715099,
]  # fmt: skip
FASTER_BASIC_RLE = [  # faster-coco-eval tests/test_basic.py::test_coco_eval (RLE, no bbox)
    0.6947194719471946, 0.6947194719471946, 0.6947194719471946, -1.0, 0.7367986798679867, 0.0,
    0.6666666666666666, 0.75, 0.75, -1.0, 0.7916666666666666, 0.0,
]  # fmt: skip
DETECTRON2 = [  # faster-coco-eval tests/test_coco_metric.py::test_detectron2_eval, places=12
    0.7252475247524752, 1.0, 1.0, 0.8, 0.7, -1.0, 0.35, 0.75, 0.75, 0.8, 0.7, -1.0
]  # fmt: skip


@pytest.mark.parametrize(
    ("gt_parts", "results_parts", "hard_coded"),
    [
        (("faster_coco_eval", "instances_val2014_100.json"),
         ("faster_coco_eval", "instances_val2014_fakesegm100_results.json"), FASTER_VAL2014),
        (("faster_coco_eval", "instances_val2014_100.json"),
         ("cocoapi", "instances_val2014_fakesegm100_results.json"), FASTER_VAL2014),
        (("faster_coco_eval", "gt_dataset.json"), ("faster_coco_eval", "dt_dataset.json"), None),
        (("detectron2", "gt_annotations.json"), ("detectron2", "detections.json"), DETECTRON2),
    ],
)  # fmt: skip
def test_peer_fixtures_equal_pycocotools_and_their_own_figures(
    tmp_path: Path,
    database_url: str,
    gt_parts: tuple[str, ...],
    results_parts: tuple[str, ...],
    hard_coded: list[float] | None,
) -> None:
    gt, results = peer_fixture(*gt_parts), peer_fixture(*results_parts)
    result = evaluate_files(tmp_path, database_url, gt, results)
    assert_equal_to_pycocotools(result, gt, results)
    if hard_coded is not None:
        np.testing.assert_allclose(coco_figures(result), hard_coded, rtol=0, atol=TOL)


def test_peer_polygon_results_without_boxes_give_faster_coco_evals_figures(
    tmp_path: Path, database_url: str
) -> None:
    """faster-coco-eval's test_basic drops the boxes and turns polygons into RLE first."""
    gt = peer_fixture("faster_coco_eval", "gt_dataset.json")
    images = {i["id"]: i for i in json.loads(gt.read_text())["images"]}
    converted = []
    for r in json.loads(peer_fixture("faster_coco_eval", "dt_dataset.json").read_text()):
        image = images[r["image_id"]]
        merged = mask_utils.merge(
            mask_utils.frPyObjects(r["segmentation"], image["height"], image["width"])
        )
        converted.append(
            {"image_id": r["image_id"], "category_id": r["category_id"], "score": r["score"],
             "segmentation": {"size": merged["size"], "counts": merged["counts"].decode()}}
        )  # fmt: skip
    results = tmp_path / "rle_results.json"
    results.write_text(json.dumps(converted))
    result = evaluate_files(tmp_path, database_url, gt, results)
    np.testing.assert_allclose(coco_figures(result), FASTER_BASIC_RLE, rtol=0, atol=TOL)
    assert_equal_to_pycocotools(result, gt, results)


def test_annotation_id_0_is_renumbered_so_it_can_match(tmp_path: Path, database_url: str) -> None:
    """A deliberate difference: pycocotools reads annotation id 0 as "unmatched"."""
    square = np.zeros((20, 20), dtype=bool)
    square[2:8, 2:8] = True
    case = CocoCase(
        gt={
            "images": [{"id": 0, "file_name": "a.png", "width": 20, "height": 20}],
            "categories": [{"id": 0, "name": "thing"}],
            "annotations": [
                {
                    "id": 0,
                    "image_id": 0,
                    "category_id": 0,
                    "segmentation": rle(square),
                    "area": 36.0,
                    "bbox": [2, 2, 6, 6],
                    "iscrowd": 0,
                }
            ],
        },  # fmt: skip
        results=[{"image_id": 0, "category_id": 0, "segmentation": rle(square), "score": 0.9}],
    )
    gt, results = case.write(tmp_path / "files")
    result = evaluate_files(tmp_path, database_url, gt, results)
    assert result["coco"]["AP"] == 1.0 and result["classes"][0]["true_positives"] == 1
    assert pycocotools_stats(gt, results, renumber_annotations=False)[0] == 0.0
    assert pycocotools_stats(gt, results)[0] == pytest.approx(1.0, abs=TOL)


def test_polygon_results_without_boxes_are_evaluated_as_their_rasterised_masks(
    tmp_path: Path,
) -> None:
    """A deliberate difference: pycocotools' loadRes raises on polygons without a bbox."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    case = generated_case(9, crowded=False)
    polygons = CocoCase(case.gt, [dict(r) for r in case.results])
    for r in polygons.results:
        r.pop("bbox", None)
        mask = mask_utils.decode(r["segmentation"]).astype(bool)
        ys, xs = np.nonzero(mask)
        if ys.size:  # the mask's bounding rectangle as a polygon, and the same as RLE
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            r["segmentation"] = [[float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]]
    gt, results = polygons.write(tmp_path / "polygons")
    rasterised = CocoCase(case.gt, [dict(r) for r in polygons.results])
    images = {i["id"]: i for i in case.gt["images"]}
    for r in rasterised.results:
        if isinstance(r["segmentation"], list):
            image = images[r["image_id"]]
            merged = mask_utils.merge(
                mask_utils.frPyObjects(r["segmentation"], image["height"], image["width"])
            )
            r["segmentation"] = {"size": merged["size"], "counts": merged["counts"].decode()}
    _, rle_results = rasterised.write(tmp_path / "rle")
    with pytest.raises(TypeError):
        pycocotools_stats(gt, results)
    result = evaluate_files(tmp_path, url, gt, results)
    assert_equal_to_pycocotools(result, gt, rle_results)


@pytest.mark.parametrize("kind", HOSTED)
def test_evaluate_model_reference_runs_the_hosted_model(
    kind: str, exported_toys: ExportedToys, colour_dataset: Path, tmp_path: Path
) -> None:
    config = fresh_workspace(tmp_path, colour_dataset, kind, exported_toys)
    report = invoke_json(config, "evaluate", "--holdout", "colours", "--model", "reference")
    [result] = report["results"]
    assert result["images"] == EXPECTED.images
    # the toy models find exactly the labeled rectangles: perfect scores
    assert (result["ap"], result["precision"], result["recall"], result["mean_iou"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert result["source"] == f"model:{result['model_version']}"
    assert report["ignored"] == ({"kite": EXPECTED.kites} if kind == "maskrcnn-onnx" else {})


def test_evaluate_scheduled_runs_the_job_once_and_then_finds_nothing_new(
    tmp_path: Path, database_url: str
) -> None:
    """SQLite and PostgreSQL: --scheduled scores the golden requests, a rerun stores nothing."""
    from monitor.synth import SynthConfig, generate_scenes

    scenes = tmp_path / "scenes"
    generate_scenes(scenes, SynthConfig(n_images=4, seed=3, size=96))
    ok(segmon(tmp_path, database_url, "init", "--json"))
    images = ["--images", str(scenes / "images")]
    gt = str(scenes / "annotations.json")
    ok(segmon(tmp_path, database_url, "holdout", "import", gt, *images, "--name", "h"))
    ok(segmon(tmp_path, database_url, "ingest", str(scenes), "--json"))
    first = ok(segmon(tmp_path, database_url, "evaluate", "--scheduled", "--json"))
    assert first["scheduled"]["mode"] == "full" and first["scheduled"]["since"] is None
    [result] = first["results"]
    assert (result["dataset"], result["source"], result["images"]) == ("h", "production", 4)
    again = ok(segmon(tmp_path, database_url, "evaluate", "--scheduled", "--json"))
    assert again["scheduled"]["mode"] == "incremental"
    assert again["scheduled"]["since"] == first["scheduled"]["through"]
    assert again["results"] == []
    with make_engine(database_url).connect() as conn:
        runs = conn.execute(select(JobRun.id, JobRun.job).order_by(JobRun.id)).all()
    assert [job for _, job in runs if job == "evaluate"] == ["evaluate", "evaluate"]
    assert {first["run_id"], again["run_id"]} <= {rid for rid, _ in runs}
    clash = segmon(tmp_path, database_url, "evaluate", "--scheduled", "--holdout", "h")
    assert clash.returncode != 0 and "drop --holdout" in clash.stderr
