"""The evaluate job: score predictions against a labeled holdout and store the result.

Ground truth and predictions are read as the compressed RLEs stored at import and
ingest (no mask is decoded again) and scored by :func:`monitor.quality.evaluation.evaluate`.
Predictions come from:

- ``production``: golden requests, i.e. production samples whose image (by sha256) is a
  holdout image. One evaluation per model version; where a version saw the same image
  more than once, its latest capture counts. Only holdout images with a golden request
  of that version are evaluated.
- ``file``: a COCO results JSON whose ``image_id``s are the holdout file's image ids.
  Its predictions' areas (which COCOeval uses to ignore unmatched predictions outside
  a size range) follow pycocotools' ``loadRes``: when the first result carries a
  ``bbox``, every result's area is its box's width x height; otherwise the mask's
  pixel count.
- ``production`` on a ``labelled`` dataset (labels returned from the annotation queue):
  each image is a production sample, evaluated with the instances production stored
  for it at capture time, one evaluation per model version of the samples
  (:func:`labelled_predictions`); samples whose labels are flagged for review and not
  accepted are left out.
- ``model``: predictions a model (any :class:`~monitor.model.protocol.SegmentationModel`)
  makes over the holdout images (:func:`model_predictions`).

The evaluator sees the holdout file's own image ids (not the database's), so score
ties across images are broken in the file's id order, as COCOeval does; ground truth
sizes are the annotations' stated ``area`` (the mask's pixel count where the file
states none).

Each evaluation is stored as one ``quality_results`` row (per-instance outcomes are
left out of the stored report; the counts they add up to are kept) with one
``class_quality`` row per holdout or predicted class.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import ImageArray
from monitor.clock import Clock
from monitor.errors import InvalidInputError, NotFoundError
from monitor.images import ImageProblem, read_image
from monitor.jobs.executor import Cached, Executor, LocalExecutor, ModelSource, model_source
from monitor.masks import MaskError, encode_mask, to_compressed
from monitor.model.classmap import predict_counting_ignored
from monitor.model.protocol import InstanceSegmenter, category_ids_by_name
from monitor.quality.evaluation import GroundTruth, Prediction, QualityReport, evaluate
from monitor.storage.schema import (
    Category,
    ClassQualityRow,
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    ModelVersion,
    PredictedInstance,
    QualityResult,
    Sample,
    SampleStatus,
)
from monitor.storage.trusted import LABELLED_KIND, trusted_sample


@dataclass(frozen=True)
class Holdout:
    """A labeled dataset as the evaluator needs it."""

    dataset_id: int
    name: str
    images: Mapping[int, DatasetImage]  # by dataset image id
    ground_truth: tuple[GroundTruth, ...]
    categories: Mapping[int, str]
    kind: str = "holdout"
    """``holdout``, or ``labelled`` for labelled production samples (annotation queue)."""


@dataclass(frozen=True)
class PredictionSet:
    """Predictions of one model version over some holdout images."""

    model_version: str
    source: str
    image_ids: tuple[int, ...]
    predictions: tuple[Prediction, ...]
    ignored: Counter[str] = field(default_factory=Counter)
    """A model's instances of classes its ``classes_map`` leaves out, by its class name
    (counted where its batches ran; empty for files and logged predictions)."""


@dataclass
class EvaluateReport:
    """What one evaluate run stored."""

    holdout: str
    results: list[tuple[int, PredictionSet, QualityReport]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Return per-version headline figures."""
        return {
            "holdout": self.holdout,
            "results": [
                {
                    "quality_result_id": result_id,
                    "model_version": preds.model_version,
                    "source": preds.source,
                    "images": len(preds.image_ids),
                    "ap": report.coco.ap,
                    "ap50": report.coco.ap50,
                    "mean_iou": report.overall.mean_iou,
                    "precision": report.overall.precision,
                    "recall": report.overall.recall,
                    "unknown_category_predictions": report.n_unknown_category_predictions,
                }
                for result_id, preds, report in self.results
            ],
        }


def _rle(height: int, width: int, counts: str) -> dict[str, Any]:
    return {"size": [height, width], "counts": counts}


def load_holdout(session: Session, name: str) -> Holdout:
    """Read a holdout's images, ground truth and the model's categories.

    Raises
    ------
    NotFoundError
        If no dataset is called ``name``.
    """
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        known = sorted(session.scalars(select(Dataset.name)))
        raise NotFoundError(f"no holdout named {name!r}; imported: {known}")
    image_query = select(DatasetImage).where(DatasetImage.dataset_id == dataset.id)
    if dataset.kind == LABELLED_KIND:  # labels flagged for review wait for a decision
        image_query = image_query.where(trusted_sample(DatasetImage.sample_id))
    images = {img.id: img for img in session.scalars(image_query)}
    rows = session.execute(
        select(GroundTruthInstance)
        .join(DatasetImage)
        .where(DatasetImage.dataset_id == dataset.id, DatasetImage.id.in_(list(images)))
        .order_by(GroundTruthInstance.id)
    ).scalars()
    ground_truth = tuple(
        GroundTruth(
            image_id=row.image_id,
            category_id=row.category_id,
            rle=_rle(images[row.image_id].height, images[row.image_id].width, row.rle_counts),
            area=float(row.area if row.coco_area is None else row.coco_area),
            iscrowd=row.iscrowd,
            annotation_id=row.id,
        )
        for row in rows
    )
    categories = {c.id: c.name for c in session.scalars(select(Category).order_by(Category.id))}
    return Holdout(dataset.id, dataset.name, images, ground_truth, categories, dataset.kind)


def golden_source(captured: tuple[datetime, datetime] | None = None) -> str:
    """Return the ``prediction_source`` of golden requests (of one capture window, if any).

    Examples
    --------
    >>> from datetime import UTC
    >>> golden_source((datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)))
    'production:2026-11-23T00:00:00+00:00/2026-11-24T00:00:00+00:00'
    """
    if captured is None:
        return "production"
    return f"production:{captured[0].isoformat()}/{captured[1].isoformat()}"


def golden_predictions(
    session: Session,
    holdout: Holdout,
    captured: tuple[datetime, datetime] | None = None,
    *,
    ingested: tuple[datetime | None, datetime] | None = None,
) -> list[PredictionSet]:
    """Production predictions on holdout images, one set per model version.

    With ``captured`` only the golden requests captured in ``[start, end)`` count; with
    ``ingested`` only those ingested in ``(since, through]`` (``since`` None: up to
    ``through``), as the scheduled evaluate job reads what arrived since its last run.
    """
    by_sha = {
        img.image_sha256: img.id for img in holdout.images.values() if img.image_sha256 is not None
    }
    stmt = (
        select(Sample.id, Sample.image_sha256, ModelVersion.name, Sample.captured_at)
        .join(ModelVersion, Sample.model_version_id == ModelVersion.id)
        .where(Sample.status == SampleStatus.OK, Sample.image_sha256.in_(list(by_sha)))
        .order_by(Sample.captured_at, Sample.id)
    )
    if captured is not None:
        stmt = stmt.where(Sample.captured_at >= captured[0], Sample.captured_at < captured[1])
    if ingested is not None:
        since, through = ingested
        stmt = stmt.where(Sample.ingested_at <= through)
        if since is not None:
            stmt = stmt.where(Sample.ingested_at > since)
    samples = session.execute(stmt).all()
    latest: dict[tuple[str, int], int] = {}  # (version, holdout image) -> sample id
    for sample_id, sha, version, _ in samples:
        if sha is not None:
            latest[(version, by_sha[sha])] = sample_id
    if not latest:
        return []
    sample_to_image = {sample_id: image_id for (_, image_id), sample_id in latest.items()}
    instances = session.scalars(
        select(PredictedInstance)
        .where(PredictedInstance.sample_id.in_(list(sample_to_image)))
        .order_by(PredictedInstance.id)
    ).all()
    by_sample: dict[int, list[PredictedInstance]] = {}
    for inst in instances:
        by_sample.setdefault(inst.sample_id, []).append(inst)
    sets = []
    for version in sorted({v for v, _ in latest}):
        chosen = {image_id: sid for (v, image_id), sid in latest.items() if v == version}
        preds = tuple(
            Prediction(
                image_id=image_id,
                category_id=inst.category_id,
                score=inst.score,
                rle=_rle(
                    holdout.images[image_id].height, holdout.images[image_id].width, inst.rle_counts
                ),
                area=float(inst.area),
            )
            for image_id, sid in sorted(chosen.items())
            for inst in by_sample.get(sid, [])
        )
        source = golden_source(captured)
        sets.append(PredictionSet(version, source, tuple(sorted(chosen)), preds))
    return sets


def labelled_predictions(session: Session, holdout: Holdout) -> list[PredictionSet]:
    """Production's stored predictions on labelled production samples, one set per version.

    Each image of a ``labelled`` dataset is a production sample
    (``dataset_images.sample_id``); its predictions are the instances production
    returned when the sample was captured, under the sample's model version.
    """
    by_sample = {img.sample_id: img.id for img in holdout.images.values() if img.sample_id}
    if not by_sample:
        return []
    versions: dict[int, str] = {
        sample_id: version
        for sample_id, version in session.execute(
            select(Sample.id, ModelVersion.name)
            .join(ModelVersion, Sample.model_version_id == ModelVersion.id)
            .where(Sample.id.in_(list(by_sample)))
        )
    }
    instances = session.scalars(
        select(PredictedInstance)
        .where(PredictedInstance.sample_id.in_(list(versions)))
        .order_by(PredictedInstance.id)
    ).all()
    sets = []
    for version in sorted(set(versions.values())):
        image_ids = tuple(sorted(by_sample[s] for s, v in versions.items() if v == version))
        preds = tuple(
            Prediction(
                image_id=by_sample[inst.sample_id],
                category_id=inst.category_id,
                score=inst.score,
                rle=_rle(
                    holdout.images[by_sample[inst.sample_id]].height,
                    holdout.images[by_sample[inst.sample_id]].width,
                    inst.rle_counts,
                ),
                area=float(inst.area),
            )
            for inst in instances
            if versions[inst.sample_id] == version
        )
        sets.append(PredictionSet(version, "production", image_ids, preds))
    return sets


def _result_field(index: int, entry: Mapping[str, Any], key: str) -> Any:
    if key not in entry:
        raise InvalidInputError(f"result {index}: no {key!r} (keys: {sorted(entry)})")
    return entry[key]


def _bbox_area(index: int, entry: Mapping[str, Any]) -> float:
    box = entry.get("bbox")
    if (
        not isinstance(box, list | tuple)
        or len(box) != 4
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in box)
        or box[2] < 0
        or box[3] < 0
    ):
        raise InvalidInputError(
            f"result {index}: bbox {box!r} is not [x, y, width, height]; the first result "
            "has a bbox, so (as in pycocotools) every result's area is its box's"
        )
    return float(box[2]) * float(box[3])


def file_predictions(path: Path, holdout: Holdout, model_version: str) -> PredictionSet:
    """Read a COCO results JSON over the holdout (ids are the holdout file's image ids).

    Areas follow pycocotools' ``loadRes``: when the first result has a non-empty
    ``bbox``, every result's area is its box's width x height, otherwise its mask's
    pixel count. Results of category ids the configuration does not know are kept
    here; the evaluator ignores them and counts them (``n_unknown_category_predictions``).

    Raises
    ------
    InvalidInputError
        For a file that is not a results list, or an entry without ``image_id``,
        ``category_id``, ``score`` or ``segmentation``, with an unknown image id, a bad
        score, a bad mask or (when areas come from boxes) a bad box; the message names
        the entry.
    """
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read results file {str(path)!r}: {exc}") from exc
    if not isinstance(results, list):
        raise InvalidInputError(f"{str(path)!r} is not a COCO results list")
    by_source = {img.source_image_id: img for img in holdout.images.values()}
    first = results[0] if results else None
    areas_from_boxes = isinstance(first, dict) and first.get("bbox") not in (None, [])
    preds = []
    for index, entry in enumerate(results):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"result {index}: {entry!r:.80} is not an object")
        image_id = _result_field(index, entry, "image_id")
        image = by_source.get(image_id) if isinstance(image_id, int) else None
        if image is None:
            raise InvalidInputError(
                f"result {index}: image_id {image_id!r} is not an image of holdout {holdout.name!r}"
            )
        category_id = _result_field(index, entry, "category_id")
        if not isinstance(category_id, int) or isinstance(category_id, bool):
            raise InvalidInputError(
                f"result {index}: category_id {category_id!r} is not an integer"
            )
        score = _result_field(index, entry, "score")
        if not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
            raise InvalidInputError(f"result {index}: score {score!r} is not a number in [0, 1]")
        try:
            mask = to_compressed(
                _result_field(index, entry, "segmentation"), image.height, image.width
            )
        except MaskError as exc:
            raise InvalidInputError(f"result {index}: {exc}") from exc
        preds.append(
            Prediction(
                image_id=image.id,
                category_id=category_id,
                score=float(score),
                rle=_rle(image.height, image.width, mask.counts),
                area=_bbox_area(index, entry) if areas_from_boxes else float(mask.area),
            )
        )
    return PredictionSet(model_version, f"file:{path}", tuple(sorted(holdout.images)), tuple(preds))


@dataclass(frozen=True)
class HoldoutItem:
    """One holdout image as a batch carries it (no ORM object: it travels to workers)."""

    position: int
    image_id: int
    file_name: str
    image_uri: str
    height: int
    width: int


def _holdout_pixels(item: HoldoutItem) -> ImageArray | InvalidInputError:
    pixels = read_image(item.image_uri, item.height, item.width)
    if isinstance(pixels, ImageProblem):
        return InvalidInputError(f"holdout image {item.file_name!r}: {pixels.detail}")
    return pixels


@dataclass(frozen=True)
class PredictedHoldout:
    """One batch's predictions, as a worker returns them (no pixels).

    Attributes
    ----------
    first
        Position of the batch's first image in the holdout's id order.
    images
        Images in the batch.
    predictions
        Their predictions, in image order, with the configured category ids.
    ignored
        Instances the model left out (``classes_map``), by its class name.
    """

    first: int
    images: int
    predictions: tuple[Prediction, ...]
    ignored: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class HoldoutPredictWork:
    """``evaluate --model``'s batch work: read each holdout image, predict, encode.

    Runs in this process or on a Dask worker (``model`` is then a
    :class:`~monitor.jobs.executor.Cached` recipe the worker builds once).
    """

    model: ModelSource[InstanceSegmenter]
    categories: Mapping[int, int]
    """The model's category ids to the configured ones."""

    def load(self, item: HoldoutItem) -> tuple[HoldoutItem, ImageArray | InvalidInputError]:
        """Read one image; an unreadable one is returned as its error (never raises)."""
        return item, _holdout_pixels(item)

    def compute(
        self, loaded: list[tuple[HoldoutItem, ImageArray | InvalidInputError]]
    ) -> PredictedHoldout:
        """Predict a batch and encode its masks.

        Raises
        ------
        InvalidInputError
            The first image of the batch that could not be read.
        """
        images: list[ImageArray] = []
        for _, pixels in loaded:
            if isinstance(pixels, InvalidInputError):
                raise pixels
            images.append(pixels)
        preds: list[Prediction] = []
        predicted, ignored = predict_counting_ignored(self.model.get(), images)
        for (item, _), instances in zip(loaded, predicted, strict=True):
            for inst in instances:
                mask = encode_mask(inst.mask)
                preds.append(
                    Prediction(
                        image_id=item.image_id,
                        category_id=self.categories[inst.category_id],
                        score=float(inst.score),
                        rle=_rle(item.height, item.width, mask.counts),
                        area=float(mask.area),
                    )
                )
        first = loaded[0][0].position if loaded else 0
        return PredictedHoldout(first, len(loaded), tuple(preds), ignored)


def model_predictions(
    model: InstanceSegmenter,
    holdout: Holdout,
    *,
    batch_size: int = 16,
    on_batch: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
    recipe: Cached[InstanceSegmenter] | None = None,
) -> PredictionSet:
    """Run ``model`` over every holdout image and return its predictions.

    The model's classes map to the configured categories by name. ``on_batch`` is
    called with (images done, images in all) after each batch, e.g. a progress bar.
    Batches run on ``executor`` (None: in this process); a remote one needs the
    ``recipe`` its workers build the model from, and must reach the image files.
    """
    order = sorted(holdout.images)
    imageless = [holdout.images[i].file_name for i in order if holdout.images[i].image_uri is None]
    if imageless:
        raise InvalidInputError(
            f"holdout {holdout.name!r} has {len(imageless)} images imported without their files "
            f"(--no-images), e.g. {imageless[0]!r}: --model needs the pixels; evaluate a results "
            "file with --predictions, or import the holdout again with --images"
        )
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    ids = category_ids_by_name(model.name, model.categories, holdout.categories)
    items = [
        HoldoutItem(n, i, img.file_name, str(img.image_uri), int(img.height), int(img.width))
        for n, (i, img) in enumerate((i, holdout.images[i]) for i in order)
    ]
    batches = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
    executor = executor or LocalExecutor()
    work = HoldoutPredictWork(model_source(model, executor, recipe), ids)
    done: list[PredictedHoldout] = []
    images = 0
    for batch in executor.map_batches(work, batches):
        done.append(batch)
        images += batch.images
        if on_batch is not None:
            on_batch(images, len(order))
    done.sort(key=lambda b: b.first)  # a cluster returns batches as they complete
    preds = tuple(p for b in done for p in b.predictions)
    ignored: Counter[str] = Counter()
    for batch in done:
        ignored.update(batch.ignored)
    return PredictionSet(model.name, f"model:{model.name}", tuple(order), preds, ignored)


def _report_json(report: QualityReport) -> dict[str, Any]:
    doc = dataclasses.asdict(report)
    doc.pop("instances", None)  # per-instance outcomes: large, and summed in the counts
    return json.loads(json.dumps(doc, default=str))  # type: ignore[no-any-return]


def store_report(
    session: Session,
    holdout: Holdout,
    preds: PredictionSet,
    report: QualityReport,
    clock: Clock,
    run_id: int | None = None,
    computed_at: datetime | None = None,
) -> QualityResult:
    """Store one evaluation and its per-class rows (``computed_at``: default now)."""
    result = QualityResult(
        run_id=run_id,
        computed_at=clock.now() if computed_at is None else computed_at,
        dataset_id=holdout.dataset_id,
        model_version=preds.model_version,
        prediction_source=preds.source,
        iou_threshold=report.iou_threshold,
        n_images=report.n_images,
        n_ground_truth=report.overall.n_ground_truth,
        n_predictions=report.overall.n_predictions,
        ap=report.coco.ap,
        ap50=report.coco.ap50,
        mean_iou=report.overall.mean_iou,
        precision=report.overall.precision,
        recall=report.overall.recall,
        report=_report_json(report),
    )
    result.classes = [
        ClassQualityRow(
            category_id=c.category_id,
            class_name=c.name,
            n_ground_truth=c.n_ground_truth,
            n_predictions=c.n_predictions,
            true_positives=c.true_positives,
            false_positives=c.false_positives,
            false_negatives=c.false_negatives,
            mean_iou=c.mean_iou,
            precision=c.precision,
            recall=c.recall,
            f1=c.f1,
            false_positives_per_image=c.false_positives_per_image or 0.0,
            ap=c.ap,
        )
        for c in report.per_class
    ]
    session.add(result)
    session.flush()
    return result


def score_predictions(
    holdout: Holdout, preds: PredictionSet, iou_threshold: float
) -> QualityReport:
    """Score one prediction set against the holdout images it covers.

    The evaluator sees the holdout file's own image ids, so ties break as in COCOeval.
    """
    in_file = {image_id: img.source_image_id for image_id, img in holdout.images.items()}
    image_set = set(preds.image_ids)
    gts = [
        dataclasses.replace(g, image_id=in_file[g.image_id])
        for g in holdout.ground_truth
        if g.image_id in image_set
    ]
    scored = [dataclasses.replace(p, image_id=in_file[p.image_id]) for p in preds.predictions]
    return evaluate(
        gts, scored, holdout.categories, [in_file[i] for i in preds.image_ids], iou_threshold
    )


def evaluate_holdout(
    sessions: sessionmaker[Session],
    holdout_name: str,
    clock: Clock,
    *,
    predictions: Path | None = None,
    model: InstanceSegmenter | None = None,
    model_version: str | None = None,
    iou_threshold: float = 0.5,
    batch_size: int = 16,
    on_batch: Callable[[int, int], None] | None = None,
    run_id: int | None = None,
    executor: Executor | None = None,
    recipe: Cached[InstanceSegmenter] | None = None,
) -> EvaluateReport:
    """Evaluate predictions against holdout ``holdout_name`` and store the results.

    Parameters
    ----------
    sessions
        Session factory.
    holdout_name
        An imported dataset.
    clock
        Stamps ``computed_at``.
    predictions
        A COCO results file; without it (and without ``model``) the golden requests in
        the production sample log are evaluated.
    model
        A model to run over the holdout images (its ``name`` is the model version).
    model_version
        Version name for a results file (default: the file's name).
    iou_threshold
        Matching threshold for precision, recall, F1 and mean IoU.
    batch_size, on_batch
        Batch size of ``model`` and a progress callback ``(done, total)``.
    run_id
        The job run that writes the results (``quality_results.run_id``).
    executor, recipe
        Where ``model``'s batches run (None: in this process) and how a remote
        executor's workers build it (:func:`model_predictions`).

    Raises
    ------
    NotFoundError
        Unknown holdout, or no predictions to evaluate (no golden requests).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise InvalidInputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    with sessions() as session:
        holdout = load_holdout(session, holdout_name)
        if predictions is not None:
            sets = [file_predictions(predictions, holdout, model_version or predictions.stem)]
        elif model is not None:
            sets = [
                model_predictions(
                    model,
                    holdout,
                    batch_size=batch_size,
                    on_batch=on_batch,
                    executor=executor,
                    recipe=recipe,
                )
            ]
        elif holdout.kind == LABELLED_KIND:
            sets = labelled_predictions(session, holdout)
        else:
            sets = golden_predictions(session, holdout)
    if not sets and holdout.kind == LABELLED_KIND:
        raise NotFoundError(
            f"dataset {holdout_name!r} holds no trusted labelled sample yet (import labels with "
            "`segmon queue import`; flagged ones wait for `segmon queue review`)"
        )
    if not sets:
        raise NotFoundError(
            f"no production sample shows an image of holdout {holdout_name!r} (golden requests are "
            "matched by image sha256); pass --predictions RESULTS.json or --model"
        )
    out = EvaluateReport(holdout_name)
    for preds in sets:
        report = score_predictions(holdout, preds, iou_threshold)
        with sessions.begin() as session:
            result = store_report(session, holdout, preds, report, clock, run_id=run_id)
            out.results.append((result.id, preds, report))
    return out
