"""``segmon predict``: run a model over an image folder or a COCO file, write COCO results.

Results are COCO results JSON (``image_id``, ``category_id`` (the model's 1-based ids),
``segmentation`` as compressed RLE, ``bbox``, ``score``, plus ``class_scores``). Image
ids come from the COCO file; for a folder, the images (``*.png``, ``*.jpg``, ``*.jpeg``,
``*.bmp``, ``*.webp``) are sorted by name and numbered from 1, and the mapping is written
next to the results as a COCO images file ``<results>.images.json`` (``id``,
``file_name``, ``width``, ``height``), which ``segmon ingest --coco-images`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors._typing import ImageArray
from monitor.errors import InvalidInputError, NotFoundError
from monitor.images import ImageProblem, read_image
from monitor.masks import encode_mask
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


def predict_to_coco(
    model: InstanceSegmenter,
    entries: list[ImageEntry],
    out: Path,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    images_file: Path | None = None,
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

    Returns
    -------
    PredictSummary
    """
    results: list[dict[str, Any]] = []
    coco_images: list[dict[str, Any]] = []
    for start in range(0, len(entries), batch_size):
        chunk = entries[start : start + batch_size]
        images = [_read(e) for e in chunk]
        for entry, image, instances in zip(chunk, images, model.predict(images), strict=True):
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
        if progress is not None:
            progress(min(start + batch_size, len(entries)), len(entries))
    _write_json(out, results)
    if images_file is not None:
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(model.categories)]
        _write_json(images_file, {"images": coco_images, "categories": categories})
    return PredictSummary(out, images_file, len(entries), len(results), model.name)


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
