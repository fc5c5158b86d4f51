"""Categories a newcomer can manage: init --categories-from, segmon categories, --add-categories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from monitor.config import load_settings
from tests.monitor.cli.test_quality_commands import ok, segmon
from tests.support.coco_files import CocoCase, rle


def _coco(categories: list[dict[str, Any]], used: list[int]) -> CocoCase:
    square = np.zeros((16, 16), dtype=bool)
    square[3:9, 3:9] = True
    return CocoCase(
        gt={
            "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 16}],
            "categories": categories,
            "annotations": [
                {
                    "id": n + 1,
                    "image_id": 1,
                    "category_id": c,
                    "segmentation": rle(square),
                    "area": 36.0,
                    "iscrowd": 0,
                }
                for n, c in enumerate(used)
            ],
        },  # fmt: skip
        results=[
            {"image_id": 1, "category_id": c, "segmentation": rle(square), "score": 0.8}
            for c in used
        ],
    )


def config_categories(folder: Path) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in load_settings(folder / "segmon.yaml").categories]


def test_init_takes_zero_based_categories_from_a_coco_file(
    tmp_path: Path, database_url: str
) -> None:
    gt, _ = _coco([{"id": 0, "name": "person"}, {"id": 1, "name": "bicycle"}], [0]).write(tmp_path)
    done = ok(segmon(tmp_path, database_url, "init", "--categories-from", str(gt), "--json"))
    assert [c["name"] for c in done["categories"]] == ["person", "bicycle"]
    assert config_categories(tmp_path) == [(0, "person"), (1, "bicycle")]
    text = (tmp_path / "segmon.yaml").read_text()
    assert "# The production model's classes" in text  # the commented config is kept
    listed = ok(segmon(tmp_path, database_url, "categories", "list", "--json"))
    assert [(c["id"], c["name"], c["in_config"]) for c in listed["categories"]] == [
        (0, "person", True),
        (1, "bicycle", True),
    ]


def test_an_existing_config_gains_the_missing_categories_and_clashes_are_named(
    tmp_path: Path, database_url: str
) -> None:
    ok(segmon(tmp_path, database_url, "init"))
    shapes = config_categories(tmp_path)
    gt, _ = _coco([{"id": 9, "name": "kite"}, {"id": 1, "name": "disc"}], [9]).write(tmp_path)
    ok(segmon(tmp_path, database_url, "init", "--categories-from", str(gt)))
    assert config_categories(tmp_path) == [*shapes, (9, "kite")]
    clash, _ = _coco([{"id": 2, "name": "person"}], [2]).write(tmp_path / "clash")
    refused = segmon(tmp_path, database_url, "init", "--categories-from", str(clash))
    assert refused.returncode == 2
    assert "'person' has id 2" in refused.stderr and "'box'" in refused.stderr


def test_rename_follows_into_stored_results_and_the_config(
    tmp_path: Path, database_url: str
) -> None:
    gt, results = _coco([{"id": 0, "name": "person"}, {"id": 1, "name": "car"}], [0, 1]).write(
        tmp_path
    )
    ok(segmon(tmp_path, database_url, "init", "--categories-from", str(gt)))
    ok(segmon(tmp_path, database_url, "holdout", "import", str(gt), "--no-images", "--name", "h"))
    ok(segmon(tmp_path, database_url, "evaluate", "--holdout", "h", "--predictions", str(results)))
    renamed = ok(
        segmon(tmp_path, database_url, "categories", "rename", "person", "human", "--json")
    )
    assert renamed == {"id": 0, "old_name": "person", "name": "human"}
    assert config_categories(tmp_path) == [(0, "human"), (1, "car")]
    shown = ok(segmon(tmp_path, database_url, "evaluate", "show", "--json"))
    assert [c["name"] for c in shown["classes"]] == ["human", "car"]  # stored per-class rows
    stats = ok(segmon(tmp_path, database_url, "categories", "list", "--json"))
    assert stats["categories"][0]["rows"]["class_quality"] == 1
    merge = segmon(tmp_path, database_url, "categories", "rename", "human", "car")
    assert merge.returncode == 2 and "merge" in merge.stderr
    used = segmon(tmp_path, database_url, "categories", "remove", "car")
    assert used.returncode == 2 and "class_quality" in used.stderr
    ok(segmon(tmp_path, database_url, "categories", "add", "7", "truck"))
    assert (7, "truck") in config_categories(tmp_path)
    ok(segmon(tmp_path, database_url, "categories", "remove", "7"))
    assert (7, "truck") not in config_categories(tmp_path)
    taken = segmon(tmp_path, database_url, "categories", "add", "1", "bus")
    assert taken.returncode == 2 and "id 1 is taken by 'car'" in taken.stderr


def test_a_config_rename_is_refused_with_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    ok(segmon(tmp_path, url, "init"))
    config = tmp_path / "segmon.yaml"
    config.write_text(config.read_text().replace("name: disc", "name: human"))
    refused = segmon(tmp_path, url, "init")
    assert refused.returncode == 2
    assert "segmon categories rename disc human" in refused.stderr
    ok(segmon(tmp_path, url, "categories", "rename", "disc", "human"))
    ok(segmon(tmp_path, url, "init"))


def test_holdout_import_adds_categories_only_when_asked(tmp_path: Path, database_url: str) -> None:
    ok(segmon(tmp_path, database_url, "init"))
    gt, results = _coco([{"id": 0, "name": "person", "supercategory": "human"}], [0]).write(
        tmp_path
    )
    refused = segmon(
        tmp_path, database_url, "holdout", "import", str(gt), "--no-images", "--name", "h"
    )
    assert refused.returncode == 2
    assert "'person'" in refused.stderr and "--add-categories" in refused.stderr
    added = ok(
        segmon(tmp_path, database_url, "holdout", "import", str(gt), "--no-images", "--name", "h",
               "--add-categories", "--json")
    )  # fmt: skip
    assert added["added_categories"] == [{"id": 0, "name": "person", "supercategory": "human"}]
    assert (0, "person") in config_categories(tmp_path)
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
    assert doc["results"][0]["coco"]["AP"] == 1.0
    assert yaml.safe_load((tmp_path / "segmon.yaml").read_text())["categories"][-1] == {
        "id": 0,
        "name": "person",
        "supercategory": "human",
    }


def test_a_holdout_without_images_serves_results_files_and_the_pixel_jobs_skip_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    gt, results = _coco([{"id": 3, "name": "thing"}], [3, 3]).write(tmp_path)
    ok(segmon(tmp_path, url, "init", "--categories-from", str(gt)))
    imported = ok(
        segmon(tmp_path, url, "holdout", "import", str(gt), "--no-images", "--name", "h", "--json")
    )
    assert imported["with_images"] is False and imported["images"] == 1
    refused = segmon(tmp_path, url, "evaluate", "--holdout", "h", "--model", "reference")
    assert refused.returncode == 2 and "--no-images" in refused.stderr
    drift = segmon(tmp_path, url, "drift", "--json")
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["image_properties"]["without_pixels"] == 1
