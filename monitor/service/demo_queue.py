"""The annotation loop of ``segmon demo``: queue the drifted day, export, label, evaluate.

After the demo's two days, on the drifted day:

1. the ``queue`` job fills the annotation queue within a demo budget (a fifth of a day's
   images), as ``segmon run`` would;
2. the queued items are exported as one Label Studio batch, their images hard-linked
   into the batch folder (self-contained and fast);
3. a simulated annotator returns them: each task comes back with the generated ground
   truth of its image (synth knows every true instance) as brush labels, written as a
   Label Studio JSON export (:func:`annotate_tasks`);
4. the returned file is imported (labels reviewed against production and the reference
   model), and production's stored predictions are evaluated on the labelled samples:
   true production quality on the drifted day, per class, set beside the holdout's
   quality and the shadow agreement, which are all segmon knew before the labels came.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.model.protocol import InstanceSegmenter
from monitor.quality.evaluation import QualityReport
from monitor.quality.job import evaluate_holdout
from monitor.queue.exporter import export_batch
from monitor.queue.job import run_queue_job
from monitor.queue.labels import import_labels
from monitor.queue.returns import read_returned
from monitor.slo.duration import parse_duration
from monitor.storage.schema import (
    ClassQualityRow,
    Dataset,
    QualityResult,
    QueueItem,
    Sample,
    ShadowScore,
)
from sampling.formats.labelstudio import build_tasks
from sampling.formats.records import ExportImage, ExportMask

__all__ = [
    "ANNOTATOR",
    "LABEL_SHARE",
    "ClassLabelQuality",
    "LabelledQuality",
    "QueueDemoReport",
    "annotate_tasks",
    "describe_queue",
    "run_queue_demo",
]

LABEL_SHARE = 5
"""The demo labels one image in this many of the drifted day (at least two)."""
ANNOTATOR = "demo-annotator"
"""``labeled_by`` of the simulated labels."""


@dataclass(frozen=True)
class ClassLabelQuality:
    """Production's true quality on one class of the labelled samples.

    Attributes
    ----------
    name
        The class.
    labels, predictions
        Labelled (ground-truth) and predicted instances of the class.
    ap, mean_iou, recall
        Mask AP (0.50:0.95), mean IoU of matched pairs and recall at IoU 0.5 on the
        labelled samples; None where undefined (no label, no match).
    holdout_ap
        Production's AP on the class in the latest holdout evaluation, for comparison.
    """

    name: str
    labels: int
    predictions: int
    ap: float | None
    mean_iou: float | None
    recall: float | None
    holdout_ap: float | None


@dataclass(frozen=True)
class LabelledQuality:
    """One model version's evaluation on the labelled production samples."""

    quality_result_id: int
    model_version: str
    images: int
    ap: float | None
    ap50: float | None
    mean_iou: float | None
    recall: float | None
    per_class: tuple[ClassLabelQuality, ...]


@dataclass(frozen=True)
class QueueDemoReport:
    """What the labels of the drifted day revealed.

    Attributes
    ----------
    budget
        Items the fill could queue (the demo's daily budget).
    candidates, queued, reasons
        Samples scored, items queued and items per main reason (the signal that
        chose them).
    export_batch_id, export_path, exported
        The Label Studio batch and how many items it holds.
    labeled, skipped, flagged
        Items labelled by the import, skipped, and flagged for review (item id to
        the reason).
    label_instances
        Ground-truth instances stored.
    evaluation
        Production on the trusted labelled samples, one entry per model version.
    holdout_ap, holdout_recall
        Production's quality on the holdout (golden requests), what segmon knew before.
    shadow_agreement_day, shadow_agreement_labelled
        Mean shadow agreement with the reference over the drifted day's samples, and
        over the labelled ones.
    """

    budget: int
    candidates: int
    queued: int
    reasons: Mapping[str, int]
    export_batch_id: int | None
    export_path: str | None
    exported: int
    labeled: int
    skipped: int
    flagged: Mapping[int, str]
    label_instances: int
    evaluation: tuple[LabelledQuality, ...]
    holdout_ap: float | None
    holdout_recall: float | None
    shadow_agreement_day: float | None
    shadow_agreement_labelled: float | None
    item_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict, at full precision."""
        doc = asdict(self)
        doc["reasons"] = dict(sorted(self.reasons.items()))
        doc["flagged"] = {str(k): v for k, v in sorted(self.flagged.items())}
        doc["item_ids"] = list(self.item_ids)
        doc["evaluation"] = [
            {**asdict(ev), "per_class": [asdict(c) for c in ev.per_class]} for ev in self.evaluation
        ]
        return doc


def _demo_settings(settings: Settings, images_per_day: int, out_dir: Path) -> Settings:
    """Return the settings with a small budget and Label Studio exports of linked images."""
    budget = min(settings.queue.daily_budget, max(2, images_per_day // LABEL_SHARE))
    export = settings.queue.export.model_copy(
        update={"format": "labelstudio", "images": "link", "out_dir": out_dir, "limit": budget}
    )
    queue = settings.queue.model_copy(
        update={"daily_budget": budget, "run_budget": None, "export": export}
    )
    return settings.model_copy(update={"queue": queue})


def _ground_truth(day_log: Path) -> dict[str, list[ExportMask]]:
    """Synth's true instances of each generated image, by file name."""
    doc = json.loads((day_log / "annotations.json").read_text())
    names = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
    files = {int(img["id"]): str(img["file_name"]) for img in doc["images"]}
    truth: dict[str, list[ExportMask]] = {name: [] for name in files.values()}
    for ann in doc["annotations"]:
        category = int(ann["category_id"])
        truth[files[int(ann["image_id"])]].append(
            ExportMask(category, names[category], ann["segmentation"], None)
        )
    return truth


def annotate_tasks(
    tasks: Sequence[Mapping[str, Any]],
    truth: Mapping[int, Sequence[ExportMask]],
    *,
    annotator: str,
    when: datetime,
) -> list[dict[str, Any]]:
    """Return exported Label Studio tasks as an annotator returns them, labelled with ``truth``.

    Each task keeps its data and predictions and gains one annotation whose results are
    the true instances of its item (``truth`` by ``data.segmon_item_id``) as brush
    labels, which is what Label Studio's JSON export holds once an annotator corrected
    the pre-annotation. A task without an entry in ``truth`` comes back unannotated.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> tasks = build_tasks([ExportImage(7, "a.png", 2, 2, 0.9, (), "v1")])
    >>> true = {7: [ExportMask(1, "disc", {"size": [2, 2], "counts": "031"}, None)]}
    >>> back = annotate_tasks(tasks, true, annotator="ann", when=datetime(2026, 1, 1, tzinfo=UTC))
    >>> annotation = back[0]["annotations"][0]
    >>> annotation["completed_by"], annotation["was_cancelled"], len(annotation["result"])
    ({'email': 'ann'}, False, 1)
    >>> result = annotation["result"][0]
    >>> result["origin"], result["value"]["brushlabels"], tasks[0].get("annotations")
    ('manual', ['disc'], None)
    """
    returned = []
    for number, task in enumerate(tasks, start=1):
        data = task["data"]
        copy = {**task, "data": dict(data)}
        masks = truth.get(int(data["segmon_item_id"]))
        if masks is not None:
            labelled = ExportImage(
                int(data["segmon_item_id"]),
                str(data["image"]),
                int(data["segmon_width"]),
                int(data["segmon_height"]),
                0.0,
                tuple(masks),
                "ground-truth",
            )
            results = build_tasks([labelled])[0]["predictions"][0]["result"]
            copy["annotations"] = [
                {
                    "id": number,
                    "completed_by": {"email": annotator},
                    "was_cancelled": False,
                    "ground_truth": False,
                    "created_at": when.isoformat(),
                    "result": [{**r, "origin": "manual"} for r in results],
                }
            ]
        returned.append(copy)
    return returned


def _truth_by_item(
    session: Session, item_ids: Sequence[int], truth: Mapping[str, list[ExportMask]]
) -> dict[int, list[ExportMask]]:
    rows = session.execute(
        select(QueueItem.id, Sample.image_uri)
        .join(Sample, Sample.id == QueueItem.sample_id)
        .where(QueueItem.id.in_(list(item_ids)))
    )
    found: dict[int, list[ExportMask]] = {}
    for item_id, uri in rows:
        name = posixpath.basename(str(uri or ""))
        if name in truth:
            found[int(item_id)] = truth[name]
    return found


def _holdout_quality(
    session: Session,
) -> tuple[tuple[float | None, float | None], dict[str, float | None]]:
    """Production's latest holdout evaluation (golden requests): AP, recall, AP per class."""
    result = session.scalars(
        select(QualityResult)
        .join(Dataset, Dataset.id == QualityResult.dataset_id)
        .where(Dataset.kind == "holdout", QualityResult.prediction_source == "production")
        .order_by(QualityResult.computed_at.desc(), QualityResult.id.desc())
        .limit(1)
    ).first()
    if result is None:
        return (None, None), {}
    per_class = {
        str(name): ap
        for name, ap in session.execute(
            select(ClassQualityRow.class_name, ClassQualityRow.ap).where(
                ClassQualityRow.quality_result_id == result.id
            )
        )
    }
    return (result.ap, result.recall), per_class


def _mean_agreement(
    session: Session, sample_ids: Sequence[int] | None, since: datetime
) -> float | None:
    """Mean of each sample's latest shadow agreement (the day's samples, or the given ones)."""
    latest = (
        select(ShadowScore.sample_id, func.max(ShadowScore.id).label("id"))
        .group_by(ShadowScore.sample_id)
        .subquery()
    )
    query = (
        select(ShadowScore.agreement)
        .join(latest, latest.c.id == ShadowScore.id)
        .join(Sample, Sample.id == ShadowScore.sample_id)
    )
    if sample_ids is None:
        query = query.where(Sample.captured_at >= since)
    else:
        query = query.where(Sample.id.in_(list(sample_ids)))
    values = [float(v) for v in session.scalars(query)]
    return sum(values) / len(values) if values else None


def _labelled_quality(
    result_id: int,
    version: str,
    images: int,
    report: QualityReport,
    holdout: Mapping[str, float | None],
) -> LabelledQuality:
    return LabelledQuality(
        quality_result_id=result_id,
        model_version=version,
        images=images,
        ap=report.coco.ap,
        ap50=report.coco.ap50,
        mean_iou=report.overall.mean_iou,
        recall=report.overall.recall,
        per_class=tuple(
            ClassLabelQuality(
                name=c.name,
                labels=c.n_ground_truth,
                predictions=c.n_predictions,
                ap=c.ap,
                mean_iou=c.mean_iou,
                recall=c.recall,
                holdout_ap=holdout.get(c.name),
            )
            for c in report.per_class
        ),
    )


def run_queue_demo(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    workdir: Path,
    images_per_day: int,
    reference: InstanceSegmenter,
    say: Callable[[str], None] = lambda _: None,
) -> QueueDemoReport:
    """Fill, export, label (with the generated ground truth), import and evaluate the drifted day.

    Parameters
    ----------
    sessions
        The demo database, after the drifted day was ingested, embedded, shadowed and
        checked for drift.
    settings
        The demo's settings; the queue budget and the export options are set here.
    clock
        At the end of the drifted day (the fill looks back ``queue.lookback``).
    workdir
        The demo folder: the drifted day's generated log is ``log/day2`` (its
        ``annotations.json`` is the ground truth), exports go to ``queue/``.
    images_per_day
        Images of the drifted day; the budget is a fifth of them.
    reference
        The reference model that reviews the returned labels.
    say
        Progress messages.
    """
    out_dir = workdir / "queue"
    demo = _demo_settings(settings, images_per_day, out_dir)
    say(f"queue: filling the annotation queue (budget {demo.queue.daily_budget}), exporting it")
    filled, _ = run_job(
        sessions, JobName.QUEUE, clock, lambda run: run_queue_job(sessions, demo, clock, run_id=run)
    )
    exported = export_batch(sessions, demo, clock)
    flagged: dict[int, str] = {}
    labeled: list[int] = []
    skipped: list[int] = []
    instances = 0
    evaluation: tuple[LabelledQuality, ...] = ()
    with sessions() as session:
        (holdout_ap, holdout_recall), holdout_classes = _holdout_quality(session)
    if exported is not None:
        say(f"queue: {len(exported.item_ids)} items labelled by a simulated annotator, imported")
        tasks = json.loads(Path(exported.path).read_text())
        with sessions() as session:
            truth = _truth_by_item(
                session, exported.item_ids, _ground_truth(workdir / "log" / "day2")
            )
        returned = annotate_tasks(tasks, truth, annotator=ANNOTATOR, when=clock.now())
        returned_path = out_dir / f"returned-{exported.batch_id:06d}-labelstudio.json"
        returned_path.write_text(json.dumps(returned))
        report = import_labels(
            sessions,
            read_returned(returned_path, "labelstudio"),
            clock,
            file=str(returned_path),
            fmt="labelstudio",
            dataset=demo.labels.dataset,
            reference=reference,
            review_below=demo.labels.review_below,
            min_iou=demo.shadow.min_iou,
            batch_size=demo.labels.batch_size,
            access=demo.images.access(),
        )
        labeled, skipped, flagged = report.labeled, report.skipped, dict(report.flagged)
        instances = report.instances
        if len(set(labeled) - set(flagged)) > 0:
            say("queue: evaluating production on the labelled samples")
            evaluated, _ = run_job(
                sessions,
                JobName.EVALUATE,
                clock,
                lambda run: evaluate_holdout(sessions, demo.labels.dataset, clock, run_id=run),
            )
            evaluation = tuple(
                _labelled_quality(
                    rid, preds.model_version, len(preds.image_ids), rep, holdout_classes
                )
                for rid, preds, rep in evaluated.results
            )
    with sessions() as session:
        since = clock.now() - parse_duration(demo.queue.lookback)  # the fill's span
        labelled_samples = list(
            session.scalars(select(QueueItem.sample_id).where(QueueItem.id.in_(labeled)))
        )
        day_agreement = _mean_agreement(session, None, since)
        labelled_agreement = _mean_agreement(session, labelled_samples, since)
    return QueueDemoReport(
        budget=filled.filled.budget,
        candidates=filled.filled.n_candidates,
        queued=filled.filled.n_queued,
        reasons=dict(filled.filled.reasons),
        export_batch_id=None if exported is None else exported.batch_id,
        export_path=None if exported is None else exported.path,
        exported=0 if exported is None else len(exported.item_ids),
        labeled=len(labeled),
        skipped=len(skipped),
        flagged=flagged,
        label_instances=instances,
        evaluation=evaluation,
        holdout_ap=holdout_ap,
        holdout_recall=holdout_recall,
        shadow_agreement_day=day_agreement,
        shadow_agreement_labelled=labelled_agreement,
        item_ids=filled.filled.item_ids,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def describe_queue(doc: Mapping[str, Any]) -> list[str]:
    """Return the human lines of :meth:`QueueDemoReport.to_dict`'s document (rounded).

    Examples
    --------
    >>> doc = {"budget": 2, "candidates": 9, "queued": 2, "reasons": {"drift": 2},
    ...        "export_path": "q/tasks.json", "exported": 2, "labeled": 2, "skipped": 0,
    ...        "flagged": {}, "label_instances": 5, "evaluation": [], "holdout_ap": 0.71234,
    ...        "holdout_recall": 0.9, "shadow_agreement_day": 0.5, "shadow_agreement_labelled": None}
    >>> for line in describe_queue(doc):
    ...     print(line)
    annotation queue (drifted day): 2 of 9 candidates queued (budget 2); chosen by drift 2
      exported 2 items (Label Studio) to q/tasks.json
      labels back: 2 labelled, 0 skipped, 0 flagged for review, 5 label instances
      no trusted labelled sample to evaluate
      before the labels: holdout AP 0.712, recall 0.900; shadow agreement 0.500 on the day, n/a on the labelled samples
    """
    reasons = ", ".join(f"{k} {v}" for k, v in doc["reasons"].items()) or "nothing"
    lines = [
        f"annotation queue (drifted day): {doc['queued']} of {doc['candidates']} candidates "
        f"queued (budget {doc['budget']}); chosen by {reasons}",
        f"  exported {doc['exported']} items (Label Studio) to {doc['export_path']}",
        f"  labels back: {doc['labeled']} labelled, {doc['skipped']} skipped, "
        f"{len(doc['flagged'])} flagged for review, {doc['label_instances']} label instances",
    ]
    if not doc["evaluation"]:
        lines.append("  no trusted labelled sample to evaluate")
    for ev in doc["evaluation"]:
        lines.append(
            f"  true quality of {ev['model_version']} on {ev['images']} labelled samples: "
            f"AP {_fmt(ev['ap'])}, AP50 {_fmt(ev['ap50'])}, mean IoU {_fmt(ev['mean_iou'])}, "
            f"recall {_fmt(ev['recall'])}"
        )
        for c in ev["per_class"]:
            lines.append(
                f"    {c['name']:<10} {c['labels']:>4} labels: AP {_fmt(c['ap'])} "
                f"(holdout {_fmt(c['holdout_ap'])}), mean IoU {_fmt(c['mean_iou'])}, "
                f"recall {_fmt(c['recall'])}"
            )
    lines.append(
        f"  before the labels: holdout AP {_fmt(doc['holdout_ap'])}, recall "
        f"{_fmt(doc['holdout_recall'])}; shadow agreement {_fmt(doc['shadow_agreement_day'])} "
        f"on the day, {_fmt(doc['shadow_agreement_labelled'])} on the labelled samples"
    )
    return lines
