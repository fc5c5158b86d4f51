"""A stored evaluation as a document: every figure, under the names COCO users know.

``segmon evaluate --json`` and ``segmon evaluate show --json`` print
:func:`result_document` of the stored ``quality_results`` row, so what a script reads
is exactly what the database holds: the 12 COCO figures (``AP``, ``AP50``, ``AP75``,
``APs``, ``APm``, ``APl``, ``AR1``, ``AR10``, ``AR100``, ``ARs``, ``ARm``, ``ARl``;
``null`` where COCOeval reports -1), the per-class table, recall by size and the
confusion matrix, at full precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import NotFoundError
from monitor.storage.schema import Category, Dataset, QualityResult

__all__ = ["COCO_NAMES", "load_result", "result_document"]

COCO_NAMES: Final[Mapping[str, str]] = {
    "ap": "AP",
    "ap50": "AP50",
    "ap75": "AP75",
    "ap_small": "APs",
    "ap_medium": "APm",
    "ap_large": "APl",
    "ar1": "AR1",
    "ar10": "AR10",
    "ar100": "AR100",
    "ar_small": "ARs",
    "ar_medium": "ARm",
    "ar_large": "ARl",
}
"""segmon's field name of each COCOeval statistic -> the name COCO's summary prints."""

_CLASS_FIELDS = (
    "n_ground_truth",
    "n_crowd",
    "n_predictions",
    "true_positives",
    "false_positives",
    "crowd_predictions",
    "false_negatives",
    "mean_iou",
    "precision",
    "recall",
    "f1",
    "false_positives_per_image",
    "ap",
    "ap50",
    "ap75",
    "recall_by_size",
)


def _class_row(stored: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    row = {
        "category_id": stored["category_id"],
        "name": names.get(stored["category_id"], stored["name"]),
    }
    row |= {key: stored[key] for key in _CLASS_FIELDS}
    row["misses"] = stored["false_negatives"]
    return row


def result_document(
    result: QualityResult, dataset: str, names: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """Return everything stored about one evaluation as a JSON-ready dict.

    ``names`` (category id -> today's name) relabels the classes after a
    ``segmon categories rename``; the stored report keeps the names it was made with.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> empty = {"n_ground_truth": 0, "true_positives": 0, "recall": None}
    >>> sizes = {"small": empty, "medium": empty, "large": empty}
    >>> metrics = {k: 0 for k in _CLASS_FIELDS} | {"recall_by_size": sizes}
    >>> report = {
    ...     "iou_threshold": 0.5, "n_images": 2, "n_images_without_ground_truth": 1,
    ...     "n_unknown_image_predictions": 0, "n_unknown_category_predictions": 3,
    ...     "overall": metrics, "per_class": [metrics | {"category_id": 0, "name": "cat"}],
    ...     "coco": {k: (0.5 if k == "ap50" else None) for k in COCO_NAMES},
    ...     "confusion": {"category_ids": [0], "names": ["cat"], "counts": [[0, 0], [0, 0]]}}
    >>> row = QualityResult(id=7, run_id=None, computed_at=datetime(2026, 11, 30, tzinfo=UTC),
    ...     dataset_id=1, model_version="v1", prediction_source="file:r.json",
    ...     iou_threshold=0.5, n_images=2, n_ground_truth=0, n_predictions=0, ap=None,
    ...     ap50=0.5, mean_iou=None, precision=None, recall=None, report=report)
    >>> doc = result_document(row, "holdout")
    >>> doc["coco"]["AP50"], doc["coco"]["APm"], doc["unknown_category_predictions"]
    (0.5, None, 3)
    >>> doc["classes"][0]["name"], doc["classes"][0]["misses"]
    ('cat', 0)
    """
    report = result.report
    coco = report["coco"]
    names = names or {}
    confusion = dict(report["confusion"])
    confusion["names"] = [
        names.get(c, n) for c, n in zip(confusion["category_ids"], confusion["names"], strict=True)
    ]
    return {
        "quality_result_id": result.id,
        "run_id": result.run_id,
        "computed_at": result.computed_at.isoformat(),
        "holdout": dataset,
        "model_version": result.model_version,
        "source": result.prediction_source,
        "iou_threshold": result.iou_threshold,
        "images": result.n_images,
        "images_without_ground_truth": report["n_images_without_ground_truth"],
        "unknown_image_predictions": report["n_unknown_image_predictions"],
        "unknown_category_predictions": report["n_unknown_category_predictions"],
        "ap": result.ap,
        "ap50": result.ap50,
        "mean_iou": result.mean_iou,
        "precision": result.precision,
        "recall": result.recall,
        "coco": {COCO_NAMES[key]: coco[key] for key in COCO_NAMES},
        "overall": dict(report["overall"]),
        "recall_by_size": report["overall"]["recall_by_size"],
        "classes": [_class_row(c, names) for c in report["per_class"]],
        "confusion": confusion,
    }


def load_result(
    session: Session, result_id: int | None = None
) -> tuple[QualityResult, str, dict[int, str]]:
    """Return a stored evaluation (the newest if no id), its dataset, today's class names.

    The class names map category id to name as the database holds them now.

    Raises
    ------
    NotFoundError
        If there is no such result (or none at all); the message says what exists.
    """
    query = select(QualityResult, Dataset.name).join(Dataset)
    if result_id is None:
        row = session.execute(query.order_by(QualityResult.id.desc()).limit(1)).first()
        if row is None:
            raise NotFoundError("no evaluation is stored yet: run `segmon evaluate --holdout NAME`")
    else:
        row = session.execute(query.where(QualityResult.id == result_id)).first()
        if row is None:
            ids = list(session.scalars(select(QualityResult.id).order_by(QualityResult.id)))
            shown = ", ".join(map(str, ids[-10:])) or "none"
            raise NotFoundError(f"no stored evaluation {result_id}; stored ids: {shown}")
    names = {c.id: c.name for c in session.scalars(select(Category))}
    return row[0], row[1], names
