"""Embedding features of large windows: streamed in chunks, kept as a bounded seeded sample.

A window of a million images holds a million vectors; the drift job never loads them at
once. It streams the rows from the database ``chunk_rows`` at a time
(:func:`stream_chunks`) into a :class:`BoundedSample`, which keeps at most ``k`` rows:
those whose image has the smallest seeded hash (a bottom-k sample, ties broken by row
id). Which rows are kept depends only on the seed and the ids, never on the chunk size
or the order the rows arrive in, so a chunked read and an in-memory one give the same
sample, in row-id order, and the detectors the same decisions. A window of at most
``k`` rows is kept whole, as before. Objects are sampled by their image, so an image's
objects are kept together (only the last image in may be cut).

The detectors then see a bounded sample per side: PCA is fitted on it, MMD and the
domain classifier test it, with their calibration unchanged (README: "Drift at scale").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from monitor.errors import InvalidInputError

UInt64Array = npt.NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def seeded_keys(ids: Int64Array, seed: int) -> UInt64Array:
    """Hash each id with a seed (splitmix64): the order in which ids are sampled.

    Examples
    --------
    >>> keys = seeded_keys(np.array([1, 2, 3]), seed=0)
    >>> keys.dtype, len(set(keys.tolist())), bool((seeded_keys(np.array([1]), 1) != keys[0])[0])
    (dtype('uint64'), 3, True)
    """
    with np.errstate(over="ignore"):
        x = ids.astype(np.uint64) + np.uint64(seed % 2**64) * _GOLDEN + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        hashed: UInt64Array = x ^ (x >> np.uint64(31))
    return hashed


class BoundedSample:
    """At most ``k`` rows of a stream of vectors: the bottom-k by seeded image hash.

    Parameters
    ----------
    k
        Rows kept, at least 1.
    seed
        Seeds the hash; the same seed keeps the same rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ids, vectors = np.arange(100), rng.normal(size=(100, 3))
    >>> whole = BoundedSample(10, seed=7)
    >>> whole.add(ids, vectors)
    >>> chunked = BoundedSample(10, seed=7)
    >>> for start in range(0, 100, 13):
    ...     chunked.add(ids[start : start + 13], vectors[start : start + 13])
    >>> np.array_equal(whole.vectors(), chunked.vectors()), whole.seen, whole.vectors().shape
    (True, 100, (10, 3))
    """

    def __init__(self, k: int, seed: int) -> None:
        if k < 1:
            raise InvalidInputError(f"a bounded sample keeps at least 1 row, got k={k}")
        self.k = k
        self.seed = seed
        self.seen = 0
        self._ids: Int64Array = np.zeros(0, dtype=np.int64)
        self._groups: Int64Array = np.zeros(0, dtype=np.int64)
        self._keys: UInt64Array = np.zeros(0, dtype=np.uint64)
        self._vectors: Float64Array | None = None

    def add(self, ids: Int64Array, vectors: Float64Array, groups: Int64Array | None = None) -> None:
        """Offer a chunk of rows (``groups``: each row's image; None: the row is its image)."""
        if len(ids) == 0:
            return
        groups = ids if groups is None else groups
        self.seen += len(ids)
        keys = seeded_keys(groups, self.seed)
        if self._vectors is None:
            self._vectors = np.zeros((0, vectors.shape[1]), dtype=np.float64)
        all_ids = np.concatenate([self._ids, ids])
        all_groups = np.concatenate([self._groups, groups])
        all_keys = np.concatenate([self._keys, keys])
        all_vectors = np.concatenate([self._vectors, vectors.astype(np.float64)])
        if len(all_ids) > self.k:
            keep = np.lexsort((all_ids, all_keys))[: self.k]
            all_ids, all_groups = all_ids[keep], all_groups[keep]
            all_keys, all_vectors = all_keys[keep], all_vectors[keep]
        self._ids, self._groups, self._keys, self._vectors = (
            all_ids,
            all_groups,
            all_keys,
            all_vectors,
        )

    def admits(self, ids: Int64Array, groups: Int64Array | None = None) -> npt.NDArray[np.bool_]:
        """Return whether each row could still be kept (False: it never will be).

        Lets a caller skip computing values that the sample would drop anyway.

        Examples
        --------
        >>> sample = BoundedSample(5, seed=0)
        >>> sample.add(np.arange(1000), np.zeros((1000, 1)))
        >>> new = np.arange(1000, 2000)
        >>> admitted = sample.admits(new)
        >>> sample.add(new, np.ones((1000, 1)))
        >>> kept_new = sample.groups()[sample.groups() >= 1000]
        >>> int(admitted.sum()), set(kept_new) <= set(new[admitted])
        (5, True)
        """
        if len(self._ids) < self.k:
            return np.ones(len(ids), dtype=bool)
        keys = seeded_keys(ids if groups is None else groups, self.seed)
        last = np.lexsort((self._ids, self._keys))[-1]
        worst_key, worst_id = self._keys[last], self._ids[last]
        admitted: npt.NDArray[np.bool_] = (keys < worst_key) | (
            (keys == worst_key) & (ids < worst_id)
        )
        return admitted

    def _order(self) -> npt.NDArray[np.intp]:
        return np.argsort(self._ids, kind="stable")

    def vectors(self) -> Float64Array:
        """Return the kept vectors, in row-id order."""
        if self._vectors is None:
            return np.zeros((0, 0), dtype=np.float64)
        kept: Float64Array = self._vectors[self._order()]
        return kept

    def groups(self) -> Int64Array:
        """Return the image of each kept row, in row-id order."""
        kept: Int64Array = self._groups[self._order()]
        return kept


def stream_chunks(session: Session, stmt: Any, chunk_rows: int) -> Iterator[list[Any]]:
    """Yield the rows of ``stmt`` ``chunk_rows`` at a time (a server-side cursor on PostgreSQL)."""
    if chunk_rows < 1:
        raise InvalidInputError(f"chunk_rows must be >= 1, got {chunk_rows}")
    result = session.execute(stmt.execution_options(yield_per=chunk_rows))
    for partition in result.partitions():
        yield list(partition)
