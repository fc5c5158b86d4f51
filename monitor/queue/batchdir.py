"""The folder of one export batch: written aside, renamed whole, never half there.

An export batch is a folder ``batch-<id>-<format>`` under the export directory holding
the document (``annotations.json``, ``tasks.json`` + ``labeling_config.xml``, or
``annotations.xml``) and an ``images/`` folder. :class:`StagedBatch` writes it as:

1. ``mkdtemp`` a staging folder ``.staging-<random>`` beside the final one and take an
   exclusive ``flock`` on its ``.lock`` file: the folder belongs to a live process as
   long as that lock is held (the kernel drops it when the process dies, ``kill -9``
   included);
2. write the images and the document into it (plain writes: nobody reads a staging
   folder, so no file needs its own temporary name);
3. :meth:`StagedBatch.publish`: ``fsync`` every file written and the folders (the
   files first written all, then flushed together, so the disk can batch them), rename
   the folder to its final name, ``fsync`` the export directory -- all before the
   database commit that records the batch, so a committed batch always has its
   complete folder;
4. after the commit, :meth:`StagedBatch.release` removes ``.lock`` and drops the lock.

A folder whose batch row was never committed (the process died between 1 and the
commit) is garbage: :func:`remove_orphans` deletes every ``batch-*`` or ``.staging-*``
folder that no committed batch names, once it can take the folder's lock itself (its
writer is gone) and the database, read again under that lock, still names no batch for
it. Folders of other live exporters are left alone. One export directory is shared by
the processes of one host (``flock`` on a network file system is not relied upon).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO

__all__ = [
    "LOCK_NAME",
    "StagedBatch",
    "batch_dir_name",
    "fsync_dir",
    "fsync_files",
    "remove_orphans",
    "write_file",
]

LOCK_NAME = ".lock"
_BATCH = re.compile(r"^(batch-\d+-[a-z]+|\.staging-[\w-]+)$")
_YOUNG_S = 60.0
"""A folder without a lock file younger than this may be one being created: left alone."""


def batch_dir_name(batch_id: int, fmt: str) -> str:
    """Return the final folder name of a batch.

    Examples
    --------
    >>> batch_dir_name(12, "cvat")
    'batch-000012-cvat'
    """
    return f"batch-{batch_id:06d}-{fmt}"


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in a staging folder (flushed by :meth:`StagedBatch.publish`)."""
    path.write_bytes(data)


def fsync_files(folder: Path) -> int:
    """``fsync`` every regular file under ``folder`` (links to other files are left); return how many."""
    done = 0
    for entry in folder.rglob("*"):
        if entry.is_symlink() or not entry.is_file() or entry.name == LOCK_NAME:
            continue
        fd = os.open(entry, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        done += 1
    return done


class StagedBatch:
    """A batch folder being written under its staging name (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.path = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        # Lock the file before it takes its name: a sweep that finds the name always
        # finds it locked (one that finds no lock file leaves a young folder alone), so
        # it can never take the lock first and remove a live exporter's folder.
        unnamed = self.path / f"{LOCK_NAME}.new"
        self._lock: IO[bytes] | None = unnamed.open("wb")
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(unnamed, self.path / LOCK_NAME)
        (self.path / "images").mkdir()

    def publish(self, name: str) -> Path:
        """Flush the folder and rename it to ``name`` (a garbage folder there is replaced)."""
        fsync_files(self.path)
        fsync_dir(self.path / "images")
        fsync_dir(self.path)
        final = self.root / name
        if final.exists():  # an orphan of a crashed attempt that got the same id
            shutil.rmtree(final)
        os.replace(self.path, final)
        fsync_dir(self.root)
        self.path = final
        return final

    def release(self) -> None:
        """Remove the lock file and drop the lock (after the commit, or on failure)."""
        if self._lock is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.path / LOCK_NAME).unlink()
        self._lock.close()
        self._lock = None

    def discard(self) -> None:
        """Remove the folder (the batch was not committed) and drop the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


def remove_orphans(root: Path, committed: Callable[[], Collection[str]]) -> list[str]:
    """Delete batch folders under ``root`` that no committed batch names and no process writes.

    Parameters
    ----------
    root
        The export directory.
    committed
        Returns the folder names of the committed batches, read fresh at each call.

    Returns
    -------
    list of str
        The names of the folders removed.
    """
    if not root.is_dir():
        return []
    known = set(committed())
    removed: list[str] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or not _BATCH.match(entry.name) or entry.name in known:
            continue
        lock_path = entry / LOCK_NAME
        try:
            handle = lock_path.open("rb")
        except FileNotFoundError:
            try:
                age = time.time() - entry.stat().st_mtime
            except FileNotFoundError:
                continue  # renamed away since the listing: a live exporter published it
            if age < _YOUNG_S:
                continue  # maybe being created right now
            if entry.name not in set(committed()):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live exporter is writing it
            if entry.name in set(committed()):
                continue  # committed while we looked: it is a batch now
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed
