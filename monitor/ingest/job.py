"""The ingest job: read new lines of a sample log into the database.

A sample log is a directory or fsspec URL of ``*.jsonl`` files plus the images they
name (DESIGN.md); one real location is one source, however it is spelled
(:mod:`monitor.ingest.logfiles`). Each file's watermark is the byte offset after the
last line committed, with the file's identity and a fingerprint of its head; a rerun
seeks there and reads only what is new, and a file that was rotated, replaced or
truncated is read again from its start. Every batch (lines, their instances and the new
watermark) commits in one transaction (:mod:`monitor.ingest.store`), so a process
killed mid-run loses nothing and duplicates nothing: rerun it. Identity is
(source, request_id), so a line seen twice is stored once; a corrected line replaces
a quarantined one. Bad input is stored as a quarantined sample with its reason and
original line.

Per-line isolation: each line is parsed, range-checked and its image checked on its
own (:func:`check_line`); whatever it raises sets that line aside as
``internal_error``, never the batch, and the watermark always advances. Image
references are confined to the log's folder (or ``images.allowed_roots``) and read
bounded (:mod:`monitor.images`).

A COCO results JSON plus a COCO images JSON is accepted too (:func:`coco_results_records`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import fsspec
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import IngestSettings
from monitor.errors import InvalidInputError, QuarantineReason
from monitor.images import ImageAccess, ImageProblem, inspect_image, locate, read_file
from monitor.ingest.logfiles import (
    MAX_LINE_BYTES,
    FileMark,
    LogLine,
    SampleLog,
    display_uri,
    file_identity,
    mark_after,
    open_log,
    read_head,
    read_lines,
    resume_offset,
)
from monitor.ingest.samplelog import (
    Rejection,
    SampleRecord,
    parse_line,
    parse_record,
    parse_timestamp,
)
from monitor.ingest.store import CheckedLine, ImageCheck, Ingestor, IngestReport
from monitor.limits import IMAGE_URI_CHARS

__all__ = [
    "IngestReport",
    "check_line",
    "coco_results_records",
    "display_uri",
    "ingest_coco_results",
    "ingest_log",
]

ProgressFn = Callable[[int, int], None]
"""Called with (bytes done, bytes total) after each batch."""


class ImageChecker:
    """Reads each image once, confined and bounded: sha256, decodability, size."""

    def __init__(
        self, fs: fsspec.AbstractFileSystem, root: str, verify: bool, access: ImageAccess
    ) -> None:
        self.fs = fs
        self.root = root
        self.verify = verify
        self.access = access

    def check(self, record: SampleRecord, raw: str | None = None) -> ImageCheck:
        """Check a record's image; a problem becomes the record's rejection (``raw`` kept)."""
        path = locate(self.fs, self.root, record.image, self.access)
        if isinstance(path, ImageProblem):
            return ImageCheck(None, None, _reject(record, path, raw))
        uri = display_uri(self.fs, path)
        if len(uri) > IMAGE_URI_CHARS:  # it could not be stored, so never read again
            detail = f"image {record.image!r:.120} resolves to a path of {len(uri)} characters"
            problem = ImageProblem(
                QuarantineReason.IMAGE_MISSING, f"{detail}, more than {IMAGE_URI_CHARS}"
            )
            return ImageCheck(None, None, _reject(record, problem, raw))
        data = read_file(self.fs, path, self.access, follow_symlinks=False)
        if isinstance(data, ImageProblem):
            return ImageCheck(uri, None, _reject(record, data, raw))
        digest = hashlib.sha256(data).hexdigest()
        info = inspect_image(data, self.access, record.image, verify=self.verify)
        if isinstance(info, ImageProblem):
            return ImageCheck(uri, digest, _reject(record, info, raw))
        if (info.width, info.height) != (record.width, record.height):
            detail = (
                f"image {record.image!r} is {info.width}x{info.height}, "
                f"the line says {record.width}x{record.height}"
            )
            problem = ImageProblem(QuarantineReason.IMAGE_SIZE_MISMATCH, detail)
            return ImageCheck(uri, digest, _reject(record, problem, raw))
        return ImageCheck(uri, digest, None)


def _reject(record: SampleRecord, problem: ImageProblem, raw: str | None = None) -> Rejection:
    if raw is None:
        raw = json.dumps({"request_id": record.request_id, "image": record.image})
    return Rejection(
        problem.reason, problem.detail, raw, record.request_id, record.captured_at, record.image
    )


def check_line(
    key: str,
    item: SampleRecord | Rejection,
    checker: ImageChecker,
    watermark: Mapping[str, Any] | None = None,
    raw: str | None = None,
) -> CheckedLine:
    """Check a parsed line's image; never raises (an exception quarantines the line).

    ``raw`` (the line's text) is what a rejection keeps.

    Examples
    --------
    >>> class Broken(ImageChecker):
    ...     def __init__(self) -> None: pass
    ...     def check(self, record, raw=None): raise MemoryError("no room")
    >>> line = parse_line('{"request_id": "r-1", "captured_at": "2026-11-23T10:00:00Z", '
    ...     '"image": "a.png", "width": 4, "height": 3, "instances": []}', frozenset({1}))
    >>> checked = check_line("log.jsonl@0", line, Broken())
    >>> checked.item.reason.value, checked.item.detail, checked.item.request_id
    ('internal_error', 'MemoryError: no room', 'r-1')
    """
    try:
        if isinstance(item, Rejection):
            return CheckedLine(key, item, None, watermark)
        return CheckedLine(key, item, checker.check(item, raw), watermark)
    except Exception as exc:  # the line's own boundary
        if raw is None:
            raw = json.dumps({"request_id": getattr(item, "request_id", None)})
        rejection = Rejection(
            QuarantineReason.INTERNAL_ERROR,
            f"{type(exc).__name__}: {exc}",
            item.raw if isinstance(item, Rejection) else raw,
            item.request_id,
            item.captured_at,
            item.image,
        )
        return CheckedLine(key, rejection, None, watermark)


def _parse(line: LogLine, categories: frozenset[int], max_pixels: int) -> SampleRecord | Rejection:
    if line.too_long:
        return Rejection(
            QuarantineReason.MALFORMED_JSON,
            f"line of {line.end - line.start} bytes, more than {MAX_LINE_BYTES}; its start is kept",
            line.text,
        )
    return parse_line(line.text, categories, max_pixels=max_pixels)


def _batches(lines: Iterator[LogLine], size: int) -> Iterator[tuple[list[LogLine], int | None]]:
    """Group non-blank lines in batches, each with the offset after its last line (blanks too)."""
    batch: list[LogLine] = []
    end: int | None = None
    for line in lines:
        end = line.end
        if line.text.strip() or line.too_long:
            batch.append(line)
        if len(batch) >= size:
            yield batch, end
            batch, end = [], None
    if batch or end is not None:
        yield batch, end


def _ingest_file(
    log: SampleLog,
    path: str,
    ingestor: Ingestor,
    checker: ImageChecker,
    settings: IngestSettings,
    pool: ThreadPoolExecutor,
    on_batch: Callable[[int], None],
) -> None:
    name = log.name(path)
    identity = file_identity(log.fs, path)
    head = read_head(log.fs, path)
    size = int(log.fs.size(path))
    mark = FileMark.from_json(ingestor.watermark.get(name, 0))
    offset, why = resume_offset(mark, size, identity, head)
    if why is not None:
        ingestor.report.file_events[name] = f"read again from the start: {why}"
    on_batch(offset)
    max_pixels = checker.access.max_pixels
    for batch, end in _batches(read_lines(log.fs, path, offset), settings.batch_size):
        # a line's watermark is where the next line starts: committing it alone (the
        # line-by-line fallback) never skips a line after it
        ends = [line.start for line in batch[1:]] + [end if end is not None else offset]
        parsed = [
            (f"{name}@{line.start}", _parse(line, ingestor.categories, max_pixels), after, line)
            for line, after in zip(batch, ends, strict=True)
        ]
        checked = list(
            pool.map(
                lambda p: check_line(
                    p[0],
                    p[1],
                    checker,
                    {name: mark_after(p[2], identity, head).to_json()},
                    p[3].text,
                ),
                parsed,
            )
        )
        if checked:
            ingestor.write(checked)
        elif end is not None:  # only blank lines: still move past them
            ingestor.move_watermark({name: mark_after(end, identity, head).to_json()})
        if end is not None:
            on_batch(end - offset)
            offset = end


def ingest_log(
    sessions: sessionmaker[Session],
    uri: str,
    settings: IngestSettings,
    clock: Clock,
    progress: ProgressFn | None = None,
    *,
    access: ImageAccess | None = None,
) -> IngestReport:
    """Ingest what is new in a sample log.

    Parameters
    ----------
    sessions
        Session factory of a migrated database holding the model's categories.
    uri
        A local directory, a ``*.jsonl`` file, or any fsspec URL (``memory://``, ``s3://``).
        Every spelling of one real location is one source.
    settings
        Batch size and image verification.
    clock
        Stamps ``ingested_at``.
    progress
        Told (bytes done, bytes total) after every batch.
    access
        Where images may come from and how large they may be (default
        :class:`~monitor.images.ImageAccess`).

    Returns
    -------
    IngestReport
        Lines read, samples stored, duplicates skipped, quarantined samples replaced by
        corrected lines, files read again from their start, quarantined by reason.

    Raises
    ------
    NotFoundError
        If the sample log does not exist.
    """
    access = access or ImageAccess()
    log = open_log(uri)
    ingestor = Ingestor(sessions, log.uri, "samplelog", clock)
    checker = ImageChecker(log.fs, log.root, settings.verify_images, access)
    sizes = {path: int(log.fs.size(path)) for path in log.files}
    total = sum(sizes.values())
    done = 0
    ingestor.report.files = len(log.files)
    for path in log.skipped:
        ingestor.report.file_events[log.name(path)] = "skipped: not a regular file"

    def on_batch(advanced: int) -> None:
        nonlocal done
        done += advanced
        if progress:
            progress(done, total)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for path in log.files:
            try:
                _ingest_file(log, path, ingestor, checker, settings, pool, on_batch)
            except FileNotFoundError:  # rotated away between listing and reading
                ingestor.report.file_events[log.name(path)] = "gone before it could be read"
    return ingestor.report


def coco_results_records(
    results: Sequence[Mapping[str, Any]],
    images: Sequence[Mapping[str, Any]],
    categories: frozenset[int],
    model_version: str | None,
    default_time: datetime,
) -> list[tuple[str, SampleRecord | Rejection]]:
    """Turn a COCO results list plus its COCO images into sample-log records.

    Each image becomes one sample (request id: its ``request_id`` field, else its
    ``file_name``); its results become the instances. ``captured_at`` comes from the
    image's ``captured_at`` or ``date_captured``, else ``default_time``.

    Examples
    --------
    >>> imgs = [{"id": 7, "file_name": "a.png", "width": 5, "height": 4}]
    >>> res = [{"image_id": 7, "category_id": 1, "score": 0.5,
    ...         "segmentation": {"size": [4, 5], "counts": "5220003"}}]
    >>> from datetime import UTC
    >>> [(k, r.instances[0].mask.area) for k, r in coco_results_records(
    ...     res, imgs, frozenset({1}), None, datetime(2026, 1, 1, tzinfo=UTC))]
    [('a.png', 6)]
    """
    by_image: dict[Any, list[Mapping[str, Any]]] = {}
    for result in results:
        image_id = result.get("image_id") if isinstance(result, Mapping) else None
        key = image_id if isinstance(image_id, int | str) else None
        by_image.setdefault(key, []).append(result)
    out: list[tuple[str, SampleRecord | Rejection]] = []
    for index, image in enumerate(images):
        try:
            out.append(_coco_image_record(image, by_image, categories, model_version, default_time))
        except Exception as exc:  # one image's boundary: set it aside, never the file
            raw = _dump(image)
            detail = f"{type(exc).__name__}: {exc}"
            rejection = Rejection(QuarantineReason.INTERNAL_ERROR, detail, raw)
            out.append((f"image-{index}", rejection))
    for image_id, orphans in by_image.items():
        raw = _dump(orphans[0])
        detail = f"{len(orphans)} results for image_id {image_id!r}, absent from the images file"
        out.append(
            (f"orphan-image-{image_id}", Rejection(QuarantineReason.INVALID_RECORD, detail, raw))
        )
    return out


def _dump(value: object) -> str:
    try:
        return json.dumps(value, default=str)
    except (ValueError, TypeError, RecursionError) as exc:
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _coco_image_record(
    image: Mapping[str, Any],
    by_image: dict[Any, list[Mapping[str, Any]]],
    categories: frozenset[int],
    model_version: str | None,
    default_time: datetime,
) -> tuple[str, SampleRecord | Rejection]:
    if not isinstance(image, Mapping):
        raise InvalidInputError(f"image entry {image!r:.80} is not an object")
    key = str(image.get("request_id") or image.get("file_name") or image.get("id"))
    stamp = image.get("captured_at") or image.get("date_captured")
    try:
        captured = parse_timestamp(stamp).isoformat() if stamp else default_time.isoformat()
    except Exception:
        captured = str(stamp)
    image_id = image.get("id")
    results = by_image.pop(image_id if isinstance(image_id, int | str) else None, [])
    line = {
        "request_id": key,
        "captured_at": captured,
        "model_version": model_version,
        "image": image.get("file_name"),
        "width": image.get("width"),
        "height": image.get("height"),
        "instances": [
            {k: r.get(k) for k in ("category_id", "score", "bbox", "segmentation", "class_scores")}
            if isinstance(r, Mapping)
            else r
            for r in results
        ],
    }
    return key, parse_record(line, categories)


def _load_json(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> Any:
    try:
        with fs.open(path, "rb") as handle:
            return json.load(handle)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{uri!r} is not JSON: {type(exc).__name__}: {exc}") from None


def ingest_coco_results(
    sessions: sessionmaker[Session],
    results_uri: str,
    images_uri: str,
    image_root: str | None,
    settings: IngestSettings,
    clock: Clock,
    model_version: str | None = None,
    *,
    access: ImageAccess | None = None,
) -> IngestReport:
    """Ingest a COCO results JSON with the COCO images JSON it refers to.

    Image ``file_name``s are resolved against ``image_root`` (default: the images
    JSON's folder). Rerunning skips images already stored (by request id).
    """
    fs, results_path = fsspec.core.url_to_fs(results_uri)
    results = _load_json(fs, results_path, results_uri)
    ifs, images_path = fsspec.core.url_to_fs(images_uri)
    images_doc = _load_json(ifs, images_path, images_uri)
    images = images_doc.get("images") if isinstance(images_doc, Mapping) else images_doc
    if not isinstance(results, list) or not isinstance(images, list):
        raise InvalidInputError(
            f"{results_uri!r} must be a COCO results list and {images_uri!r} hold an 'images' list"
        )
    source_uri = display_uri(fs, results_path)
    ingestor = Ingestor(sessions, source_uri, "coco-results", clock)
    records = coco_results_records(results, images, ingestor.categories, model_version, clock.now())
    root = image_root or posixpath.dirname(images_path)
    checker = ImageChecker(ifs, root, settings.verify_images, access or ImageAccess())
    ingestor.report.files = 1
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, len(records), settings.batch_size):
            batch = records[start : start + settings.batch_size]
            checked = list(pool.map(lambda kv: check_line(kv[0], kv[1], checker), batch))
            ingestor.write(checked)
    return ingestor.report
