"""The files of a sample log: one source per real location, and where to resume each file.

:func:`open_log` normalises a sample-log URI so one real location is one source: a
relative or absolute path, a path through a symbolic link, a trailing slash, or the
directory and one of its ``*.jsonl`` files all name the same source (the directory),
and watermarks are keyed by each file's path relative to it.

A file's watermark (:class:`FileMark`) is the byte offset after the last line
committed, with the file's identity (device and inode for local files, fsspec's
``ino`` where a file system has one) and a fingerprint of its head (sha256 of its first
bytes, up to :data:`HEAD_BYTES`). :func:`resume_offset` reads a file again from its
start when it was rotated, replaced, truncated or rewritten in place, even when the new
file is larger than the old watermark; identity of samples, (source, request_id), keeps
the lines already stored from being stored twice.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from monitor.errors import NotFoundError

HEAD_BYTES = 4096
"""How many bytes from a file's start its fingerprint covers (fewer while it is shorter)."""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A longer line is not read into memory: it is quarantined by its first bytes."""


@dataclass(frozen=True)
class SampleLog:
    """A normalised sample log: its source URI, folder and the files to read."""

    fs: Any
    uri: str
    root: str
    files: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    """``*.jsonl`` entries that are not regular files (a FIFO would block the reader)."""

    def name(self, path: str) -> str:
        """Return a file's path relative to the log's folder (its watermark key)."""
        return str(PurePosixPath(path).relative_to(self.root))


def display_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Return a path for humans and the database: plain for local files, else a URL."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else str(fs.unstrip_protocol(path))


def _real(fs: fsspec.AbstractFileSystem, path: str) -> str:
    if isinstance(fs, LocalFileSystem):
        return os.path.realpath(path)
    return posixpath.normpath(path).rstrip("/") or "/"


def open_log(uri: str) -> SampleLog:
    """Normalise a sample-log URI and list its ``*.jsonl`` files.

    Parameters
    ----------
    uri
        A directory, one ``*.jsonl`` file, or any fsspec URL of either.

    Returns
    -------
    SampleLog
        The source URI (the real directory), its folder and the files to read: every
        ``*.jsonl`` under a directory, or just the one file named.

    Raises
    ------
    NotFoundError
        If nothing exists there.

    Examples
    --------
    >>> fs = fsspec.filesystem("memory"); fs.pipe("/logs/a/day1.jsonl", b"")
    >>> open_log("memory://logs/a/").uri == open_log("memory://logs/b/../a/day1.jsonl").uri
    True
    >>> open_log("memory://logs/a/day1.jsonl").files
    ('/logs/a/day1.jsonl',)
    """
    fs, path = fsspec.core.url_to_fs(uri)
    real = _real(fs, path)
    if fs.isfile(real):
        root = posixpath.dirname(real) or "/"
        files: tuple[str, ...] = (real,)
    elif fs.isdir(real):
        root = real
        files = tuple(sorted(p for p in fs.find(real) if p.endswith(".jsonl")))
    else:
        raise NotFoundError(f"sample log {uri!r} does not exist")
    regular = tuple(p for p in files if _regular(fs, p))
    skipped = tuple(p for p in files if p not in regular)
    return SampleLog(fs, display_uri(fs, root), root, regular, skipped)


def _regular(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    if isinstance(fs, LocalFileSystem):
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            return False
    return bool(fs.info(path).get("type") == "file")


@dataclass(frozen=True)
class FileMark:
    """How far one file was read, and what the file was then.

    Attributes
    ----------
    offset
        Byte offset after the last line committed.
    identity
        ``device:inode`` of a local file (fsspec's ``ino`` elsewhere), or None.
    head
        sha256 of the file's first ``head_bytes`` bytes.
    head_bytes
        How many bytes ``head`` covers.
    """

    offset: int
    identity: str | None = None
    head: str | None = None
    head_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the mark as stored in ``sources.watermark``."""
        return {
            "offset": self.offset,
            "identity": self.identity,
            "head": self.head,
            "head_bytes": self.head_bytes,
        }

    @classmethod
    def from_json(cls, value: object) -> FileMark:
        """Read a stored mark (a bare offset is the format before identities were kept)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(offset=value)
        if isinstance(value, Mapping):
            identity, head = value.get("identity"), value.get("head")
            return cls(
                offset=int(value.get("offset", 0)),
                identity=str(identity) if identity is not None else None,
                head=str(head) if head is not None else None,
                head_bytes=int(value.get("head_bytes", 0)),
            )
        return cls(offset=0)


def file_identity(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """Return ``device:inode`` of a local file, fsspec's ``ino`` elsewhere, else None."""
    if isinstance(fs, LocalFileSystem):
        info = os.stat(path)
        return f"{info.st_dev}:{info.st_ino}"
    ino = fs.info(path).get("ino")
    return str(ino) if ino is not None else None


def read_head(fs: fsspec.AbstractFileSystem, path: str, size: int = HEAD_BYTES) -> bytes:
    """Return the first ``size`` bytes of a file (fewer if it is shorter)."""
    with fs.open(path, "rb") as handle:
        return bytes(handle.read(size))


def mark_after(offset: int, identity: str | None, head: bytes) -> FileMark:
    """Return the mark of a file read up to ``offset``, fingerprinting its first bytes.

    Examples
    --------
    >>> mark = mark_after(10, "1:2", b"0123456789abc")
    >>> mark.head_bytes, mark.head == hashlib.sha256(b"0123456789").hexdigest()
    (10, True)
    """
    covered = head[: min(offset, HEAD_BYTES)]
    return FileMark(offset, identity, hashlib.sha256(covered).hexdigest(), len(covered))


def resume_offset(
    mark: FileMark, size: int, identity: str | None, head: bytes
) -> tuple[int, str | None]:
    """Where to resume reading a file, and why it is read from its start if it is.

    Parameters
    ----------
    mark
        The stored mark.
    size, identity, head
        The file now: its size, identity and first bytes.

    Returns
    -------
    tuple
        The offset, and None or the reason the file is read again from the start.

    Examples
    --------
    >>> old = mark_after(20, "1:7", b"x" * 20)
    >>> resume_offset(old, 30, "1:7", b"x" * 30)
    (20, None)
    >>> resume_offset(old, 30, "1:8", b"x" * 30)
    (0, 'replaced (identity 1:7 -> 1:8)')
    >>> resume_offset(old, 30, "1:7", b"y" * 30)
    (0, 'rewritten (its first 20 bytes changed)')
    >>> resume_offset(old, 10, "1:7", b"x" * 10)
    (0, 'truncated (10 bytes, watermark at 20)')
    """
    if mark.offset == 0:
        return 0, None
    if mark.identity is not None and identity is not None and mark.identity != identity:
        return 0, f"replaced (identity {mark.identity} -> {identity})"
    if size < mark.offset:
        return 0, f"truncated ({size} bytes, watermark at {mark.offset})"
    if mark.head is not None:
        now = hashlib.sha256(head[: mark.head_bytes]).hexdigest()
        if len(head) < mark.head_bytes or now != mark.head:
            return 0, f"rewritten (its first {mark.head_bytes} bytes changed)"
    return mark.offset, None


@dataclass(frozen=True)
class LogLine:
    """One complete line: its byte range in the file and its text."""

    start: int
    end: int
    text: str
    too_long: bool = False


def read_lines(fs: fsspec.AbstractFileSystem, path: str, offset: int) -> Iterator[LogLine]:
    """Yield the complete lines of a file from ``offset`` (blank ones too, as empty text).

    A last line without a newline may still be being written: it is left for the next
    run. A line longer than :data:`MAX_LINE_BYTES` is skipped to its newline without
    being held in memory and yielded with ``too_long`` and its first bytes as text.
    """
    with fs.open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            too_long = len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n")
            first, length = raw[:2000], len(raw)
            while too_long and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
                if not raw:
                    return  # unfinished: wait for the rest
                length += len(raw)
            if not too_long and not raw.endswith(b"\n"):
                return
            text = (first if too_long else raw).decode("utf-8", errors="replace").rstrip("\r\n")
            yield LogLine(position, position + length, text, too_long)
            position += length
