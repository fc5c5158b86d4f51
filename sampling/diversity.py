"""Diversity: spread the chosen samples out, and never queue the same picture twice.

**k-center greedy** (farthest-first traversal, the core-set rule): start from one point
(the highest-priority one), then repeatedly take the point whose distance to its nearest
chosen point is largest. Each step updates every point's distance to the chosen set
with the one new centre, so ``k`` picks over ``n`` points of ``d`` features cost
``O(k * n * d)`` (float32). Ties go to the lowest index, i.e. the higher priority when the
caller sorts by priority, so the traversal is deterministic.

**Near-duplicates**: going through the items in order (priority order in
:func:`~sampling.selection.select`), an item is a duplicate when its image hash equals
the hash of any earlier item, or when its embedding lies closer than ``min_distance``
(Euclidean) to an earlier item that was kept; the first of each group is kept.
Comparing with kept items only is non-maximum suppression: a chain of near-identical
frames keeps every frame at least ``min_distance`` from the ones kept before it.
Distance checks cost ``O(n * kept * d)``; hash checks ``O(n)``.

Both loops run many small matrix-vector products, for which a multi-threaded BLAS only
adds overhead (and on a busy machine can be many times slower), so they run with one
BLAS thread (``threadpoolctl``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from sampling._checks import as_matrix, check_float, check_int
from sampling._neighbours import squared_norms
from sampling._typing import BoolArray, IntArray
from sampling.errors import InvalidSignalError

DUPLICATE_BLOCK = 512
"""Items whose distances to the kept items are computed in one matrix product."""


class FarthestFirst:
    """Farthest-first traversal state: each point's squared distance to the chosen centres.

    Parameters
    ----------
    vectors : numpy.ndarray
        ``(n, d)`` float32 points.

    Examples
    --------
    >>> points = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    >>> walk = FarthestFirst(points)
    >>> walk.add_centre(0)
    >>> walk.farthest()
    2
    >>> walk.add_centre(2)
    >>> walk.farthest()
    1
    """

    def __init__(self, vectors: npt.NDArray[np.float32]) -> None:
        self.vectors = vectors
        self.norms = squared_norms(vectors)
        self.min_sq = np.full(vectors.shape[0], np.inf, dtype=np.float32)
        self.open = np.ones(vectors.shape[0], dtype=bool)

    def add_centre(self, index: int) -> None:
        """Choose point ``index``: close it and update every distance with it."""
        self.add_external(self.vectors[index])
        self.open[index] = False

    def add_external(self, vector: npt.NDArray[np.float32]) -> None:
        """Count a centre that is not one of the points (chosen elsewhere)."""
        sq = self.vectors @ vector
        sq *= -2.0
        sq += self.norms
        sq += np.float32(vector @ vector)
        np.minimum(self.min_sq, sq, out=self.min_sq)

    def close(self, index: int) -> None:
        """Exclude point ``index`` without making it a centre (it did not fit a budget)."""
        self.open[index] = False

    def farthest(self) -> int | None:
        """Return the open point farthest from the centres (lowest index on ties), or None."""
        if not self.open.any():
            return None
        masked = np.where(self.open, self.min_sq, -np.inf)
        return int(np.argmax(masked))


def k_center_greedy(
    vectors: npt.ArrayLike, k: int, *, seed: int = 0, first: int | None = None
) -> IntArray:
    """Choose ``k`` points by farthest-first traversal (core-set) and return their indices.

    Parameters
    ----------
    vectors : array-like
        ``(n, d)`` finite points.
    k : int
        Points to choose, ``>= 1``; all ``n`` (in traversal order) when ``k > n``.
    seed : int
        Accepted so callers can pass their policy's seed; ties are broken by the lowest
        index, so the result does not depend on it.
    first : int, optional
        The first point; by default index 0 (the highest priority when the caller sorts
        by priority).

    Returns
    -------
    numpy.ndarray
        ``(min(k, n),)`` int64 indices in the order chosen.

    Raises
    ------
    InvalidSignalError
        ``k < 1``, a negative seed, ``first`` outside ``0 .. n - 1``, vectors not 2-D,
        NaN or inf.

    Examples
    --------
    Two tight clusters: the second pick comes from the other cluster.

    >>> rng = np.random.default_rng(0)
    >>> left, right = rng.normal(0, 0.1, (5, 2)), rng.normal(5, 0.1, (5, 2))
    >>> k_center_greedy(np.vstack([left, right]), 3).tolist()
    [0, 9, 6]
    """
    k = check_int(k, name="k", minimum=1)
    check_int(seed, name="seed", minimum=0)
    x = as_matrix(vectors, name="vectors")
    n = x.shape[0]
    start = 0 if first is None else check_int(first, name="first", minimum=0)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if start >= n:
        raise InvalidSignalError(f"first must be in 0 .. {n - 1}, got {first!r}")
    walk = FarthestFirst(x)
    chosen = [start]
    with threadpool_limits(limits=1, user_api="blas"):
        walk.add_centre(start)
        while len(chosen) < min(k, n):
            nxt = walk.farthest()
            if nxt is None:  # pragma: no cover - every point chosen
                break
            chosen.append(nxt)
            walk.add_centre(nxt)
    return np.asarray(chosen, dtype=np.int64)


class DuplicateFilter:
    """Near-duplicate suppression over items fed in order, block by block.

    Parameters
    ----------
    min_distance : float
        Embeddings closer than this (Euclidean) to a kept item are duplicates; 0 turns
        the distance check off.
    dim : int, optional
        Embedding features; None when items carry no embeddings (hashes only).

    Attributes
    ----------
    n_kept : int
        Items kept so far.

    Examples
    --------
    >>> dedupe = DuplicateFilter(0.5, dim=1)
    >>> dedupe.feed(np.array([[0.0], [0.2], [3.0]], dtype=np.float32), ["a", "b", "a"]).tolist()
    [False, True, True]
    >>> dedupe.feed(np.array([[3.1]], dtype=np.float32), [None]).tolist()
    [False]
    """

    def __init__(self, min_distance: float, dim: int | None) -> None:
        self.radius_sq = float(min_distance) ** 2
        self.use_distance = dim is not None and min_distance > 0.0
        self.hashes: set[str] = set()
        self.kept = np.zeros((0, dim or 1), dtype=np.float64)
        self.n_stored = 0  # rows of ``kept`` in use
        self.n_kept = 0

    def _store(self, vector: npt.NDArray[np.float64]) -> None:
        if self.n_stored == self.kept.shape[0]:
            grown = np.zeros((max(64, 2 * self.kept.shape[0]), self.kept.shape[1]))
            grown[: self.n_stored] = self.kept[: self.n_stored]
            self.kept = grown
        self.kept[self.n_stored] = vector
        self.n_stored += 1

    def feed(
        self, vectors: npt.NDArray[np.float32] | None, hashes: Sequence[str | None]
    ) -> BoolArray:
        """Duplicate flag of each of the next items (True = duplicate); remembers the kept ones."""
        out = np.zeros(len(hashes), dtype=bool)
        close_to_kept = np.zeros(len(hashes), dtype=bool)
        inner = np.zeros((0, 0))
        block: npt.NDArray[np.float64] | None = None
        if self.use_distance and vectors is not None and len(hashes):
            block = vectors.astype(np.float64)
            norms = np.einsum("ij,ij->i", block, block)
            if self.n_stored:
                kept = self.kept[: self.n_stored]
                sq = (
                    norms[:, None] + np.einsum("ij,ij->i", kept, kept)[None, :] - 2 * block @ kept.T
                )
                close_to_kept = (sq < self.radius_sq).any(axis=1)
            inner = norms[:, None] + norms[None, :] - 2 * block @ block.T
        kept_here: list[int] = []
        for i, digest in enumerate(hashes):
            if digest is not None:
                if digest in self.hashes:
                    out[i] = True
                    continue
                self.hashes.add(digest)
            if block is not None and (
                close_to_kept[i] or (kept_here and (inner[i, kept_here] < self.radius_sq).any())
            ):
                out[i] = True
                continue
            kept_here.append(i)
        self.n_kept += len(kept_here)
        if block is not None:
            for i in kept_here:
                self._store(block[i])
        return out


def near_duplicates(
    vectors: npt.ArrayLike | None, hashes: Sequence[str | None], *, min_distance: float
) -> BoolArray:
    """Flag each item that duplicates an earlier item; the first of a group is kept.

    Parameters
    ----------
    vectors : array-like or None
        ``(n, d)`` embeddings, or None to compare hashes only.
    hashes : Sequence[str | None]
        ``n`` image hashes; None where unknown (never equal to anything).
    min_distance : float
        Embeddings closer than this to a kept earlier item are duplicates (the module's
        rule); ``0`` compares hashes only.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` bool.

    Raises
    ------
    InvalidSignalError
        A negative or non-finite ``min_distance``, vectors and hashes of different
        lengths, vectors not 2-D, NaN or inf.

    Examples
    --------
    >>> vectors = [[0.0, 0.0], [0.05, 0.0], [1.0, 1.0], [5.0, 5.0]]
    >>> near_duplicates(vectors, ["a", "b", "c", "a"], min_distance=0.1).tolist()
    [False, True, False, True]
    >>> near_duplicates(None, ["a", None, None, "a"], min_distance=0.1).tolist()
    [False, False, False, True]
    """
    radius = check_float(min_distance, name="min_distance", low=0.0)
    x = None if vectors is None else as_matrix(vectors, name="vectors", n=len(hashes))
    dedupe = DuplicateFilter(radius, None if x is None else x.shape[1])
    out = np.zeros(len(hashes), dtype=bool)
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, len(hashes), DUPLICATE_BLOCK):
            stop = start + DUPLICATE_BLOCK
            out[start:stop] = dedupe.feed(None if x is None else x[start:stop], hashes[start:stop])
    return out


__all__ = ["DuplicateFilter", "FarthestFirst", "k_center_greedy", "near_duplicates"]
