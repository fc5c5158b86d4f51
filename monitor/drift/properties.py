"""Simple image properties (drift features), computed once per image and stored.

:func:`image_properties` is the pure numpy core; :func:`fill_image_properties` is the
first step of the drift job: it computes the properties of accepted samples and holdout
images that have none yet and writes them in bulk. The images are read and their
properties computed on the configured executor (:mod:`monitor.jobs.executor`): in this
process, a thread pool reading ahead, or as tasks on a Dask cluster whose workers read
the images themselves; the driver writes each batch's rows in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.embed.tasks import quarantine_samples
from monitor.errors import InvalidInputError, QuarantineReason
from monitor.images import ImageAccess, ImageProblem, read_image
from monitor.jobs.executor import Executor, LocalExecutor
from monitor.storage.schema import DatasetImage, ImageProperties, Sample, SampleStatus

_LUMA = np.array([0.299, 0.587, 0.114])
_BATCH = 500
_TASK_BATCH = 64
"""Images per executor batch (one task on a cluster); rows are written ``_BATCH`` at a time."""

Todo = tuple[str, int, str, int | None, int | None]
"""An image without properties: owner column, owner id, image URI, stored height and width."""


@dataclass(frozen=True)
class PropertyValues:
    """Properties of one image.

    Attributes
    ----------
    brightness
        Mean luma, 0 (black) to 1 (white).
    contrast
        Standard deviation of luma (RMS contrast), 0 to 0.5.
    saturation
        Mean HSV saturation ``(max - min) / max`` over RGB, 0 to 1.
    sharpness
        Variance of the 4-neighbour Laplacian of luma (0 to 1 scale): blur lowers it.
    width, height
        Size in pixels.
    """

    brightness: float
    contrast: float
    saturation: float
    sharpness: float
    width: int
    height: int


PROPERTY_NAMES: tuple[str, ...] = tuple(f.name for f in fields(PropertyValues))
"""The stored properties, in column order: the one list of image-property names.

Examples
--------
>>> PROPERTY_NAMES
('brightness', 'contrast', 'saturation', 'sharpness', 'width', 'height')
"""


def image_properties(image: npt.ArrayLike) -> PropertyValues:
    """Compute the properties of one decoded image.

    Parameters
    ----------
    image
        ``H x W x 3`` RGB or ``H x W`` grey, uint8 (0-255).

    Returns
    -------
    PropertyValues

    Raises
    ------
    InvalidInputError
        If the array is not an image of at least 1 x 1 pixels.

    Examples
    --------
    >>> img = np.zeros((4, 6, 3), dtype=np.uint8)
    >>> img[:, 3:] = (255, 0, 0)
    >>> p = image_properties(img)
    >>> round(p.brightness, 3), round(p.contrast, 3), p.saturation, p.width, p.height
    (0.149, 0.149, 0.5, 6, 4)
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInputError(f"an image must be H x W x 3 (or H x W), got shape {arr.shape}")
    rgb = arr[:, :, :3].astype(np.float64) / 255.0
    luma = rgb @ _LUMA
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    padded = np.pad(luma, 1, mode="edge")
    laplacian = (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * luma
    )
    return PropertyValues(
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        saturation=float(saturation.mean()),
        sharpness=float(laplacian.var()),
        width=int(arr.shape[1]),
        height=int(arr.shape[0]),
    )


PROPERTIES_MAX_SIDE = 2048
"""Larger images are shrunk by an integer factor before their properties are computed.

This bounds the memory one image costs (the properties use float64 copies); ``width``
and ``height`` are still the image's own.
"""


@dataclass
class PropertiesReport:
    """What :func:`fill_image_properties` did."""

    computed: int = 0
    unreadable: int = 0
    without_pixels: int = 0
    """Holdout images imported without their files (``--no-images``): skipped."""
    quarantined: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        """Return the counts."""
        return {
            "computed": self.computed,
            "unreadable": self.unreadable,
            "without_pixels": self.without_pixels,
            "quarantined": dict(sorted(self.quarantined.items())),
        }


def _missing(session: Session) -> list[Todo]:
    have_sample = select(ImageProperties.sample_id).where(ImageProperties.sample_id.is_not(None))
    have_image = select(ImageProperties.dataset_image_id).where(
        ImageProperties.dataset_image_id.is_not(None)
    )
    samples = session.execute(
        select(Sample.id, Sample.image_uri, Sample.height, Sample.width).where(
            Sample.status == SampleStatus.OK,
            Sample.image_uri.is_not(None),
            Sample.id.not_in(have_sample),
        )
    ).all()
    images = session.execute(
        select(
            DatasetImage.id, DatasetImage.image_uri, DatasetImage.height, DatasetImage.width
        ).where(DatasetImage.id.not_in(have_image), DatasetImage.image_uri.is_not(None))
    ).all()
    return [("sample_id", i, str(u), h, w) for i, u, h, w in samples] + [
        ("dataset_image_id", i, str(u), h, w) for i, u, h, w in images
    ]


def _count_without_pixels(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(DatasetImage).where(DatasetImage.image_uri.is_(None))
        )
        or 0
    )


def _properties(uri: str, access: ImageAccess | None) -> PropertyValues | ImageProblem:
    try:
        pixels = read_image(uri, access=access, max_side=PROPERTIES_MAX_SIDE)
        if isinstance(pixels, ImageProblem):
            return pixels
        values = image_properties(pixels)
    except Exception as exc:  # one image's boundary: never fail the drift job
        return ImageProblem(QuarantineReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
    return values


@dataclass(frozen=True)
class PropertiesWork:
    """The properties' batch work: read each image and compute its properties.

    No model: ``load`` does the work (in a loader thread, or on a Dask worker) and
    ``compute`` hands the batch back with its todo items, in order.
    """

    access: ImageAccess | None = None

    def load(self, item: Todo) -> tuple[Todo, PropertyValues | ImageProblem]:
        """Read one image and compute its properties (never raises)."""
        return item, _properties(item[2], self.access)

    def compute(
        self, loaded: list[tuple[Todo, PropertyValues | ImageProblem]]
    ) -> tuple[tuple[Todo, PropertyValues | ImageProblem], ...]:
        """Return the batch's properties (or why an image could not be read)."""
        return tuple(loaded)


def _rows(
    done: Sequence[tuple[Todo, PropertyValues | ImageProblem]],
    now: datetime,
    report: PropertiesReport,
    problems: dict[int, ImageProblem],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for (owner, owner_id, _uri, height, width), values in done:
        if isinstance(values, ImageProblem):
            if owner == "sample_id":
                problems[owner_id] = values
                report.quarantined[values.reason.value] += 1
            else:
                report.unreadable += 1  # holdout images are checked at import; tried again
            continue
        if height is not None and width is not None:
            values = replace(values, width=width, height=height)  # the size before shrinking
        rows.append({owner: owner_id, "computed_at": now, **asdict(values)})
    return rows


def _write(
    sessions: sessionmaker[Session],
    done: Sequence[tuple[Todo, PropertyValues | ImageProblem]],
    now: datetime,
    report: PropertiesReport,
) -> None:
    problems: dict[int, ImageProblem] = {}
    rows = _rows(done, now, report, problems)
    if rows or problems:
        with sessions.begin() as session:
            if rows:
                session.execute(insert(ImageProperties), rows)
            quarantine_samples(session, problems, "drift")
        report.computed += len(rows)


def fill_image_properties(
    sessions: sessionmaker[Session],
    clock: Clock,
    access: ImageAccess | None = None,
    *,
    executor: Executor | None = None,
) -> PropertiesReport:
    """Compute and store properties of samples and holdout images that have none.

    A sample whose image can no longer be used (gone, swapped for something too large,
    not a regular file) is quarantined with the reason, as embed and shadow do, instead
    of failing the job; a holdout image that cannot be read is counted and tried again
    next time.

    Parameters
    ----------
    sessions
        Session factory.
    clock
        Stamps ``computed_at``.
    access
        Byte and pixel caps of the image reader.
    executor
        Where the images are read (:mod:`monitor.jobs.executor`); None: in this process,
        with loader threads. On a cluster the workers must reach the image files.

    Returns
    -------
    PropertiesReport
        Rows written, holdout images that could not be read, samples quarantined.
    """
    report = PropertiesReport()
    with sessions() as session:
        todo = _missing(session)
        report.without_pixels = _count_without_pixels(session)
    executor = executor or LocalExecutor()
    batches = (todo[start : start + _TASK_BATCH] for start in range(0, len(todo), _TASK_BATCH))
    done: list[tuple[Todo, PropertyValues | ImageProblem]] = []
    for batch in executor.map_batches(PropertiesWork(access), batches):
        done.extend(batch)
        if len(done) >= _BATCH:
            _write(sessions, done, clock.now(), report)
            done = []
    if done:
        _write(sessions, done, clock.now(), report)
    return report
