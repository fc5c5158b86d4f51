"""Budgeted selection: which candidate samples go to the annotation queue in one run.

:func:`select` runs these steps, all deterministic:

1. **Priority** of each candidate: :func:`~sampling.signals.combine_signals` of its
   signals under the policy's weights. Candidates are then visited in descending
   priority (ties by table row).
2. **Near-duplicates** are dropped as they are visited (:class:`~sampling.diversity.
   DuplicateFilter`: same image hash as a higher-priority candidate, or embedding within
   ``duplicate_distance`` of a kept one), so the highest-priority copy is the one kept.
   The visit stops once the policy's ``pool_size`` candidates are kept, then goes on only
   through candidates of classes whose quota the pool cannot meet.
3. **Class quotas** first: each class in ``class_quota`` gets its highest-priority
   candidates until it has its minimum, the classes taking turns one item at a time
   (so a tight budget is shared, and a rare class with low priority still gets its
   items); an item counts towards every class it contains.
4. **Diversity**: the rest of the budget comes from the pool by k-center greedy on the
   embeddings, with the quota picks as the first centres (the pool's highest-priority
   candidate otherwise); in plain priority order when there are no embeddings.
5. **Budgets**: at most ``max_items`` items and, when set, ``max_instances``
   instances, where an item costs ``max(1, n_instances)`` (a crowded image costs more;
   an empty image still takes a look). An item that does not fit is passed over for
   the next one.

Items come back in descending priority, each with its per-signal scores and its main
reason, so a human can see why it was chosen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from sampling._checks import as_counts, as_matrix, check_float, check_int
from sampling._typing import FloatArray, IntArray
from sampling.diversity import DUPLICATE_BLOCK, DuplicateFilter, FarthestFirst
from sampling.errors import InvalidSignalError
from sampling.signals import (
    DEFAULT_WEIGHTS,
    SIGNALS,
    check_signals,
    check_weights,
    combine_signals,
    main_reason,
)

POOL_FACTOR: Final = 4
"""Default diversity pool: this many times the run's item budget (see ``SelectionPolicy``)."""


@dataclass(frozen=True)
class CandidateTable:
    """The candidate samples of one selection run, one row each (checked on creation).

    Attributes
    ----------
    keys
        ``(n,)`` distinct sample ids.
    signals
        Signal name (from :data:`~sampling.signals.SIGNALS`) to ``(n,)`` values in [0, 1],
        NaN where a sample lacks it.
    embeddings
        ``(n, d)`` image embeddings, or None.
    image_hashes
        ``n`` image content hashes, None where unknown.
    classes
        ``n`` sets of the category ids predicted in each sample.
    n_instances
        ``(n,)`` predicted instances per sample.

    Examples
    --------
    >>> CandidateTable(
    ...     keys=np.array([1, 2]),
    ...     signals={"drift": np.array([1.0, 0.0])},
    ...     embeddings=None,
    ...     image_hashes=[None, None],
    ...     classes=[frozenset({3}), frozenset()],
    ...     n_instances=np.array([2, -1]),
    ... )
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: n_instances must be non-negative integers; row 1 is -1
    """

    keys: IntArray
    signals: Mapping[str, FloatArray]
    embeddings: FloatArray | None
    image_hashes: Sequence[str | None]
    classes: Sequence[frozenset[int]]
    n_instances: IntArray

    def __post_init__(self) -> None:
        keys = np.asarray(self.keys)
        if keys.ndim != 1 or (keys.size and keys.dtype.kind not in "iu"):
            raise InvalidSignalError(
                f"keys must be a 1-D integer array, got shape {keys.shape} dtype {keys.dtype}"
            )
        n = keys.shape[0]
        unique, counts = np.unique(keys, return_counts=True)
        if (counts > 1).any():
            raise InvalidSignalError(f"keys must be distinct; {int(unique[counts > 1][0])} repeats")
        check_signals(self.signals, n)
        if self.embeddings is not None:
            as_matrix(self.embeddings, name="embeddings", n=n)
        for name, column in (("image_hashes", self.image_hashes), ("classes", self.classes)):
            if len(column) != n:
                raise InvalidSignalError(f"{name} has {len(column)} values, expected {n}")
        as_counts(self.n_instances, name="n_instances", n=n)

    @property
    def n(self) -> int:
        """Candidates."""
        return int(np.asarray(self.keys).shape[0])


@dataclass(frozen=True)
class SelectionPolicy:
    """How many items one run may choose, and how.

    Attributes
    ----------
    max_items
        Items this run may choose (the caller subtracts what the day already used).
    max_instances
        Optional budget in instances (an item costs ``max(1, n_instances)``).
    class_quota
        Category id to the minimum items containing it (met first, budget allowing).
    weights
        Signal weights (:data:`~sampling.signals.DEFAULT_WEIGHTS` by default).
    diversity_pool
        k-center greedy runs over this many top-priority non-duplicate candidates;
        ``None`` (default) is :data:`POOL_FACTOR` times ``max_items``. A pool much
        larger than the budget lets diversity override priority: on the queue discovery
        bench (100-image days, k = 5) a pool of the whole day found failed images at
        1.0-1.2x random, a pool of 4k at 1.2-1.7x (``python -m bench.bench_queue_discovery``).
    duplicate_distance
        Embeddings closer than this are near-duplicates; 0 compares hashes only.
    seed
        Recorded for reproducibility; every step is deterministic, ties going to the
        higher priority and then the earlier row, so it does not change the result.

    Examples
    --------
    >>> SelectionPolicy(max_items=-1)
    Traceback (most recent call last):
    ...
    sampling.errors.InvalidSignalError: max_items must be an integer >= 0, got -1
    """

    max_items: int
    max_instances: int | None = None
    class_quota: Mapping[int, int] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    diversity_pool: int | None = None
    duplicate_distance: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.max_items, name="max_items", minimum=0)
        if self.max_instances is not None:
            check_int(self.max_instances, name="max_instances", minimum=0)
        for category, minimum in self.class_quota.items():
            check_int(category, name="class_quota category id", minimum=0)
            check_int(minimum, name=f"class_quota[{category}]", minimum=0)
        check_weights(self.weights)
        if self.diversity_pool is not None:
            check_int(self.diversity_pool, name="diversity_pool", minimum=1)
        check_float(self.duplicate_distance, name="duplicate_distance", low=0.0)
        check_int(self.seed, name="seed", minimum=0)

    @property
    def pool_size(self) -> int:
        """Candidates k-center greedy runs over: ``diversity_pool`` or ``POOL_FACTOR * max_items``.

        Examples
        --------
        >>> SelectionPolicy(max_items=50).pool_size, SelectionPolicy(5, diversity_pool=9).pool_size
        (200, 9)
        """
        if self.diversity_pool is not None:
            return self.diversity_pool
        return max(1, POOL_FACTOR * self.max_items)


@dataclass(frozen=True)
class SelectedItem:
    """One chosen sample.

    Attributes
    ----------
    key
        The sample id.
    priority
        Its combined priority in [0, 1].
    reason
        The signal contributing most to the priority (``"none"`` without signals).
    signals
        Its value of each signal it has (missing signals are omitted, never NaN).

    Examples
    --------
    >>> item = SelectedItem(key=7, priority=0.8, reason="drift", signals={"drift": 1.0})
    >>> item.reason, dict(item.signals)
    ('drift', {'drift': 1.0})
    """

    key: int
    priority: float
    reason: str
    signals: Mapping[str, float]


@dataclass(frozen=True)
class Selection:
    """The outcome of one run.

    Attributes
    ----------
    items
        The chosen items in descending priority.
    n_candidates
        Candidates in the table.
    n_duplicates
        Candidates dropped as near-duplicates of higher-priority ones, among those
        visited (see :func:`select`, step 2).
    n_instances
        Predicted instances in the chosen items.

    Examples
    --------
    >>> Selection(items=(), n_candidates=10, n_duplicates=2, n_instances=0).n_duplicates
    2
    """

    items: tuple[SelectedItem, ...]
    n_candidates: int
    n_duplicates: int
    n_instances: int


class _Budget:
    """Items and instances left; an item costs one item and ``max(1, n_instances)``."""

    def __init__(self, policy: SelectionPolicy, costs: IntArray) -> None:
        self.items = policy.max_items
        self.instances = policy.max_instances
        self.costs = costs

    def fits(self, row: int) -> bool:
        return self.items > 0 and (self.instances is None or self.costs[row] <= self.instances)

    def spend(self, row: int) -> None:
        self.items -= 1
        if self.instances is not None:
            self.instances -= int(self.costs[row])

    @property
    def exhausted(self) -> bool:
        return self.items <= 0 or self.instances == 0


def _class_masks(
    classes: Sequence[frozenset[int]], wanted: Sequence[int]
) -> dict[int, npt.NDArray[np.bool_]]:
    return {
        c: np.fromiter((c in s for s in classes), dtype=bool, count=len(classes)) for c in wanted
    }


def select(table: CandidateTable, policy: SelectionPolicy) -> Selection:
    """Choose the samples to label in one run, by the module's steps.

    Parameters
    ----------
    table : CandidateTable
        The candidates.
    policy : SelectionPolicy
        Budgets, quotas, weights and diversity settings.

    Returns
    -------
    Selection
        The chosen items (descending priority) and counts.

    Examples
    --------
    Five candidates; the two best are the same image (equal hash), and class 7 is rare
    with low priority but has a quota of one.

    >>> table = CandidateTable(
    ...     keys=np.array([10, 11, 12, 13, 14]),
    ...     signals={"uncertainty_max": np.array([0.9, 0.9, 0.7, 0.5, 0.1])},
    ...     embeddings=None,
    ...     image_hashes=["h", "h", None, None, None],
    ...     classes=[frozenset({1}), frozenset({1}), frozenset({1}), frozenset({1}),
    ...              frozenset({7})],
    ...     n_instances=np.array([1, 1, 2, 1, 1]),
    ... )
    >>> chosen = select(table, SelectionPolicy(max_items=3, class_quota={7: 1}))
    >>> [(i.key, i.priority, i.reason) for i in chosen.items]
    [(10, 0.9, 'uncertainty_max'), (12, 0.7, 'uncertainty_max'), (14, 0.1, 'uncertainty_max')]
    >>> chosen.n_duplicates, chosen.n_instances
    (1, 4)
    """
    n = table.n
    signals = check_signals(table.signals, n)
    priority = combine_signals(signals, policy.weights) if signals else np.zeros(n)
    order = np.lexsort((np.arange(n), -priority))
    x = None if table.embeddings is None else as_matrix(table.embeddings, name="embeddings", n=n)
    counts = as_counts(table.n_instances, name="n_instances", n=n)
    with threadpool_limits(limits=1, user_api="blas"):  # small products: see diversity
        chosen, n_duplicates = _choose(table, policy, priority, order, x, counts)
    return _selection(table, signals, policy, priority, chosen, n_duplicates, counts)


def _choose(
    table: CandidateTable,
    policy: SelectionPolicy,
    priority: FloatArray,
    order: npt.NDArray[np.intp],
    x: npt.NDArray[np.float32] | None,
    counts: IntArray,
) -> tuple[list[int], int]:
    """Run steps 2 to 5 of :func:`select`; return the chosen rows and the duplicates dropped."""
    n = table.n
    budget = _Budget(policy, np.maximum(counts, 1))
    quota = {c: m for c, m in sorted(policy.class_quota.items()) if m > 0}
    has_class = _class_masks(table.classes, list(quota))
    dedupe = DuplicateFilter(policy.duplicate_distance, None if x is None else x.shape[1])
    n_duplicates = 0

    # Step 2: visit in priority order until the pool is full.
    pool: list[int] = []
    position = 0
    pool_size = policy.pool_size
    while position < n and len(pool) < pool_size:
        step = min(DUPLICATE_BLOCK, pool_size - len(pool))
        rows = order[position : position + step]
        position += rows.shape[0]
        dup = dedupe.feed(None if x is None else x[rows], [table.image_hashes[r] for r in rows])
        n_duplicates += int(dup.sum())
        pool.extend(rows[~dup].tolist())
    pool_rows = np.asarray(pool, dtype=np.int64)
    # ... then only through candidates of classes the pool cannot serve.
    available = {c: int(mask[pool_rows].sum()) for c, mask in has_class.items()}
    extra: list[int] = []
    short = {c for c in quota if available[c] < quota[c]}
    while position < n and short:
        row = int(order[position])
        position += 1
        if not any(has_class[c][row] for c in short):
            continue
        vector = None if x is None else x[row : row + 1]
        if dedupe.feed(vector, [table.image_hashes[row]])[0]:
            n_duplicates += 1
            continue
        extra.append(row)
        for c in list(short):
            if has_class[c][row]:
                available[c] += 1
                if available[c] >= quota[c]:
                    short.discard(c)

    # Step 3: class quotas, the classes taking turns.
    chosen: list[int] = []
    taken: set[int] = set()
    candidates = sorted(pool + extra, key=lambda r: (-priority[r], r))
    queues = {c: deque(r for r in candidates if has_class[c][r]) for c in quota}
    have = dict.fromkeys(quota, 0)
    active = list(quota)
    while active and not budget.exhausted:
        for c in list(active):
            if have[c] >= quota[c]:
                active.remove(c)
                continue
            queue = queues[c]
            while queue and (queue[0] in taken or not budget.fits(queue[0])):
                queue.popleft()
            if not queue:
                active.remove(c)
                continue
            row = queue.popleft()
            chosen.append(row)
            taken.add(row)
            budget.spend(row)
            for other in quota:
                have[other] += int(has_class[other][row])
            if budget.exhausted:
                break

    # Step 4: diversity (or priority order) over the pool.
    if x is not None and pool:
        walk = FarthestFirst(x[pool_rows])
        where = {row: i for i, row in enumerate(pool)}
        for row in chosen:
            if row in where:
                walk.add_centre(where[row])
            else:
                walk.add_external(x[row])
        while not budget.exhausted:
            nxt = walk.farthest()
            if nxt is None:
                break
            row = pool[nxt]
            if budget.fits(row):
                chosen.append(row)
                budget.spend(row)
                walk.add_centre(nxt)
            else:
                walk.close(nxt)
    else:
        for row in pool:
            if budget.exhausted:
                break
            if row not in taken and budget.fits(row):
                chosen.append(row)
                taken.add(row)
                budget.spend(row)
    return chosen, n_duplicates


def _selection(
    table: CandidateTable,
    signals: Mapping[str, FloatArray],
    policy: SelectionPolicy,
    priority: FloatArray,
    chosen: list[int],
    n_duplicates: int,
    counts: IntArray,
) -> Selection:
    rows = np.asarray(sorted(chosen, key=lambda r: (-priority[r], r)), dtype=np.int64)
    picked = {name: values[rows] for name, values in signals.items()}
    reasons = main_reason(picked, policy.weights) if picked else ["none"] * rows.shape[0]
    keys = np.asarray(table.keys)
    items = tuple(
        SelectedItem(
            key=int(keys[row]),
            priority=float(priority[row]),
            reason=reasons[i],
            signals={
                name: float(picked[name][i])
                for name in SIGNALS
                if name in picked and not np.isnan(picked[name][i])
            },
        )
        for i, row in enumerate(rows.tolist())
    )
    return Selection(
        items=items,
        n_candidates=table.n,
        n_duplicates=n_duplicates,
        n_instances=int(counts[rows].sum()),
    )


__all__ = ["CandidateTable", "SelectedItem", "Selection", "SelectionPolicy", "select"]
