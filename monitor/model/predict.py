"""``segmon predict``: run a model over an image folder or a COCO file, write COCO results.

Results are COCO results JSON (``image_id``, ``category_id`` (the model's 1-based ids),
``segmentation`` as compressed RLE, ``bbox``, ``score``, plus ``class_scores``). Image
ids come from the COCO file; for a folder, the images (``*.png``, ``*.jpg``, ``*.jpeg``,
``*.bmp``, ``*.webp``) are sorted by name and numbered from 1, and the mapping is written
next to the results as a COCO images file ``<results>.images.json`` (``id``,
``file_name``, ``width``, ``height``), which ``segmon ingest --coco-images`` reads.

Batches run on an executor (:mod:`monitor.jobs.executor`): in this process, images read
a batch ahead in threads, or as tasks on a Dask cluster whose workers read the images
and load the model themselves (once each); the results are written in image order
wherever they ran.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors._typing import ImageArray
from monitor.errors import InvalidInputError, NotFoundError, SegmonError
from monitor.images import ImageProblem, read_image
from monitor.jobs.executor import Cached, Executor, LocalExecutor, ModelSource, model_source
from monitor.masks import encode_mask
from monitor.model.classmap import predict_counting_ignored
from monitor.model.protocol import InstanceSegmenter

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class ImageEntry:
    """One image to predict: its COCO id, file name (relative to ``root``) and root."""

    id: int
    file_name: str
    root: Path

    @property
    def path(self) -> Path:
        """Full path of the image file."""
        return self.root / self.file_name


@dataclass(frozen=True)
class PredictSummary:
    """What :func:`predict_to_coco` wrote."""

    results: Path
    images_file: Path | None
    n_images: int
    n_instances: int
    model: str
    ignored: Counter[str] = field(default_factory=Counter)
    """Instances of classes the model's ``classes_map`` leaves out, by its class name,
    summed over the batches wherever they ran."""


def list_images(source: Path, images_dir: Path | None = None) -> list[ImageEntry]:
    """Return the images of a folder (sorted, ids from 1) or of a COCO JSON file.

    Parameters
    ----------
    source
        A folder of images, or a COCO JSON file with ``images``.
    images_dir
        Where a COCO file's ``file_name`` are relative to (default: an ``images/``
        folder next to the file if there is one, else the file's folder).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("b.png", "a.png", "notes.txt"):
    ...         _ = (Path(tmp) / name).write_bytes(b"")
    ...     [(e.id, e.file_name) for e in list_images(Path(tmp))]
    [(1, 'a.png'), (2, 'b.png')]
    """
    if source.is_dir():
        names = sorted(p.name for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [ImageEntry(i + 1, name, source) for i, name in enumerate(names)]
    if not source.is_file():
        raise NotFoundError(f"{source} is neither an image folder nor a COCO JSON file")
    try:
        coco = json.loads(source.read_text(encoding="utf-8"))
        entries = [(int(img["id"]), str(img["file_name"])) for img in coco["images"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{source} is not a COCO file with images: {exc!r}") from None
    if images_dir is None:
        images_dir = source.parent / "images"
        if not images_dir.is_dir():
            images_dir = source.parent
    return [ImageEntry(i, name, images_dir) for i, name in entries]


def _read(entry: ImageEntry) -> ImageArray:
    if not entry.path.is_file():
        raise NotFoundError(f"image {entry.path} (id {entry.id}) does not exist")
    pixels = read_image(str(entry.path), follow_symlinks=True)  # bounded, regular files
    if isinstance(pixels, ImageProblem):
        raise InvalidInputError(f"image id {entry.id}: {pixels.detail} ({pixels.reason.value})")
    return pixels


@dataclass(frozen=True)
class PredictedBatch:
    """One batch's COCO entries, as a worker returns them (no pixels).

    Attributes
    ----------
    first
        Position of the batch's first image in the entries.
    images
        COCO image entries (``id``, ``file_name``, ``width``, ``height``), in order.
    results
        COCO result entries of the batch's images, in image order.
    ignored
        Instances the model left out (``classes_map``), by its class name.
    """

    first: int
    images: tuple[dict[str, Any], ...]
    results: tuple[dict[str, Any], ...]
    ignored: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class PredictWork:
    """``segmon predict``'s batch work: read each image, predict, encode the masks.

    Runs in this process or on a Dask worker (``model`` is then a
    :class:`~monitor.jobs.executor.Cached` recipe the worker builds once).
    """

    model: ModelSource[InstanceSegmenter]

    def load(
        self, item: tuple[int, ImageEntry]
    ) -> tuple[int, ImageEntry, ImageArray | SegmonError]:
        """Read one image; an unreadable one is returned as its error (never raises)."""
        position, entry = item
        try:
            return position, entry, _read(entry)
        except SegmonError as exc:
            return position, entry, exc

    def compute(
        self, loaded: list[tuple[int, ImageEntry, ImageArray | SegmonError]]
    ) -> PredictedBatch:
        """Predict a batch and encode its instances as COCO results.

        Raises
        ------
        SegmonError
            The first image of the batch that could not be read.
        """
        images: list[ImageArray] = []
        for _, _, pixels in loaded:
            if isinstance(pixels, SegmonError):
                raise pixels
            images.append(pixels)
        coco_images: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        predicted, ignored = predict_counting_ignored(self.model.get(), images)
        for (_, entry, _), image, instances in zip(loaded, images, predicted, strict=True):
            coco_images.append(
                {
                    "id": entry.id,
                    "file_name": entry.file_name,
                    "width": int(image.shape[1]),
                    "height": int(image.shape[0]),
                }
            )
            for inst in instances:
                rle = encode_mask(inst.mask)
                results.append(
                    {
                        "image_id": entry.id,
                        "category_id": inst.category_id,
                        "segmentation": {"size": [rle.height, rle.width], "counts": rle.counts},
                        "bbox": list(rle.bbox),
                        "score": round(inst.score, 6),
                        "class_scores": [round(float(s), 6) for s in inst.class_scores],
                    }
                )
        first = loaded[0][0] if loaded else 0
        return PredictedBatch(first, tuple(coco_images), tuple(results), ignored)


def _batches(entries: Sequence[ImageEntry], batch_size: int) -> list[list[tuple[int, ImageEntry]]]:
    numbered = list(enumerate(entries))
    return [numbered[i : i + batch_size] for i in range(0, len(numbered), batch_size)]


def predict_to_coco(
    model: InstanceSegmenter,
    entries: list[ImageEntry],
    out: Path,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    images_file: Path | None = None,
    *,
    executor: Executor | None = None,
    recipe: Cached[InstanceSegmenter] | None = None,
) -> PredictSummary:
    """Predict every image and write COCO results JSON to ``out``.

    Parameters
    ----------
    model
        Any :class:`~monitor.model.protocol.InstanceSegmenter`.
    entries
        Images to predict (see :func:`list_images`).
    out
        Results file.
    batch_size
        Images read and predicted together.
    progress
        Called with ``(images done, total)``.
    images_file
        If given, also write the COCO images file (ids and file names) there.
    executor
        Where batches run (:mod:`monitor.jobs.executor`); None: in this process. On a
        cluster the workers must reach the image files.
    recipe
        How a remote executor's workers build the model (each once); required when
        ``executor`` is remote.

    Returns
    -------
    PredictSummary
        Files written, counts, and what the model left out (``classes_map``), counted
        where the batches ran.

    Raises
    ------
    NotFoundError
        If an image file does not exist.
    InvalidInputError
        If an image cannot be read, or ``batch_size`` is below 1.
    ConfigError
        If ``executor`` is remote and no ``recipe`` says how its workers load the model.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    executor = executor or LocalExecutor()
    work = PredictWork(model_source(model, executor, recipe))
    batches: list[PredictedBatch] = []
    done = 0
    for batch in executor.map_batches(work, _batches(entries, batch_size)):
        batches.append(batch)
        done += len(batch.images)
        if progress is not None:
            progress(done, len(entries))
    batches.sort(key=lambda b: b.first)  # a cluster returns them as they complete
    results = [r for b in batches for r in b.results]
    ignored: Counter[str] = Counter()
    for batch in batches:
        ignored.update(batch.ignored)
    coco_images = [i for b in batches for i in b.images]
    _write_json(out, results)
    if images_file is not None:
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(model.categories)]
        _write_json(images_file, {"images": coco_images, "categories": categories})
    return PredictSummary(out, images_file, len(entries), len(results), model.name, ignored)


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
