"""Checks of a COCO instances file before it is imported, and its confined image reads.

Holdout import refuses what it would otherwise drop or store twice without a word:
annotations whose ``image_id`` names no image of the file, and annotation ids used
more than once (:func:`check_annotation_references`). Its images are read like a
sample log's (:mod:`monitor.images`): confined to the images folder (or the configured
allow-list), regular files only, byte and pixel caps (:func:`read_holdout_image`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from monitor.errors import InvalidInputError
from monitor.images import ImageAccess, ImageProblem, inspect_image, locate, read_file

__all__ = ["HoldoutImage", "check_annotation_references", "read_holdout_image"]


def _listing(values: Sequence[object], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_annotation_references(
    images: Sequence[Mapping[str, Any]], annotations: Sequence[Mapping[str, Any]]
) -> None:
    """Refuse annotations for images the file does not have, and duplicate annotation ids.

    Raises
    ------
    InvalidInputError
        Naming the unknown image ids (with how many annotations point at them) and the
        duplicated annotation ids (with how often each is used).

    Examples
    --------
    >>> images = [{"id": 1}, {"id": 2}]
    >>> check_annotation_references(images, [{"id": 1, "image_id": 1}, {"id": 2, "image_id": 2}])
    >>> check_annotation_references(images, [{"id": 1, "image_id": 9}, {"id": 1, "image_id": 2}])
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: 1 annotations refer to images the file does not have (image_id 9: 1 annotations); annotation ids used more than once: 1 (2 times)
    """
    known = {image.get("id") for image in images if isinstance(image, Mapping)}
    orphans: Counter[Any] = Counter()
    ids: Counter[Any] = Counter()
    for ann in annotations:
        if not isinstance(ann, Mapping):
            continue
        if ann.get("image_id") not in known:
            orphans[ann.get("image_id")] += 1
        if ann.get("id") is not None:
            ids[ann.get("id")] += 1
    problems = []
    if orphans:
        listed = [f"image_id {k!r}: {n} annotations" for k, n in sorted(orphans.items(), key=str)]
        problems.append(
            f"{sum(orphans.values())} annotations refer to images the file does not have "
            f"({'; '.join(listed[:5])}{'; ...' if len(listed) > 5 else ''})"
        )
    duplicated = sorted(((k, n) for k, n in ids.items() if n > 1), key=lambda kn: str(kn[0]))
    if duplicated:
        problems.append(
            "annotation ids used more than once: "
            + _listing([f"{k!r} ({n} times)" for k, n in duplicated]).replace("'", "")
        )
    if problems:
        raise InvalidInputError("; ".join(problems))


@dataclass(frozen=True)
class HoldoutImage:
    """A holdout image read for import: its resolved path, sha256 and size."""

    path: str
    sha256: str
    width: int
    height: int


def read_holdout_image(
    images_dir: Path, file_name: str, access: ImageAccess | None = None
) -> HoldoutImage:
    """Read a holdout image, confined to ``images_dir`` (or the allow-list) and bounded.

    Raises
    ------
    InvalidInputError
        If the image is missing, outside the folder, not a regular file, too large, or
        not an image; the message names it.

    Examples
    --------
    >>> read_holdout_image(Path("/tmp"), "../etc/passwd")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: image '../etc/passwd' resolves to '/etc/passwd', outside '/tmp'
    """
    access = access or ImageAccess()
    fs = fsspec.filesystem("file")
    path = locate(fs, str(images_dir.resolve()), file_name, access)
    if isinstance(path, ImageProblem):
        raise InvalidInputError(path.detail)
    data = read_file(fs, path, access, follow_symlinks=False)
    if isinstance(data, ImageProblem):
        raise InvalidInputError(f"{data.detail} ({data.reason.value})")
    info = inspect_image(data, access, file_name, verify=False)
    if isinstance(info, ImageProblem):
        raise InvalidInputError(f"{info.detail} ({info.reason.value})")
    return HoldoutImage(path, hashlib.sha256(data).hexdigest(), info.width, info.height)
