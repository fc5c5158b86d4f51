"""Instance matching: one image's instances against another set of instances.

:func:`compare_instances` matches two sets of instances of one image one-to-one
regardless of class, maximising the total IoU (Hungarian assignment on the IoU matrix);
pairs below ``min_iou`` stay unmatched. Per class it counts matched pairs and class
disagreements (both under the first set's class), first-only instances (their class)
and second-only instances (the second set's class), and lists the matched pairs' IoUs;
its ``agreement`` is the sum of the same-class pairs' IoUs over the larger set's size.

One matcher for every per-image comparison: the shadow job (production against the
reference model, :mod:`monitor.quality.shadow`), review of returned labels
(:mod:`monitor.queue.review`) and the canary comparison's quality signal (production
against labels, :mod:`monitor.drift.label_scores`). It is pure (numpy, scipy, pycocotools):
no database, so every stage may import it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from detectors._typing import MaskArray
from monitor.errors import InvalidInputError

Instance = tuple[int, MaskArray]
"""A category id and a ``bool`` ``(h, w)`` mask."""


@dataclass(frozen=True)
class ClassAgreement:
    """Shadow counts of one class on one image.

    Attributes
    ----------
    matched
        Matched pairs whose production instance has this class.
    production_only
        Production instances of this class the reference did not match.
    reference_only
        Reference instances of this class production did not match.
    class_disagreements
        Matched pairs counted in ``matched`` whose reference class differs.
    ious
        IoU of each matched pair counted in ``matched``.
    """

    matched: int = 0
    production_only: int = 0
    reference_only: int = 0
    class_disagreements: int = 0
    ious: tuple[float, ...] = ()


@dataclass(frozen=True)
class ShadowComparison:
    """Production against the reference on one image.

    Attributes
    ----------
    n_production, n_reference
        Instances on each side.
    pairs
        Matched ``(production index, reference index, IoU)``, by production index.
    classes
        Counts per category id (classes with no instance on either side are absent).
    agreement
        Sum of the IoUs of matched pairs of the same class over
        ``max(n_production, n_reference)``; 1.0 when both sides are empty.
    """

    n_production: int
    n_reference: int
    pairs: tuple[tuple[int, int, float], ...]
    classes: Mapping[int, ClassAgreement]
    agreement: float

    @property
    def n_matched(self) -> int:
        """Matched pairs, of any classes."""
        return len(self.pairs)

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU of the matched pairs (None when nothing matched)."""
        return float(np.mean([iou for _, _, iou in self.pairs])) if self.pairs else None


def mask_ious(
    production: Sequence[MaskArray], reference: Sequence[MaskArray]
) -> npt.NDArray[np.float64]:
    """IoU of every production mask (rows) with every reference mask (columns).

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> mask_ious([a], [a, ~a]).tolist()
    [[1.0, 0.0]]
    """
    if not production or not reference:
        return np.zeros((len(production), len(reference)), dtype=np.float64)
    shapes = {m.shape for m in (*production, *reference)}
    if len(shapes) != 1:
        raise InvalidInputError(f"masks of one image must share a size, got {sorted(shapes)}")

    def encode(masks: Sequence[MaskArray]) -> list[dict[str, Any]]:
        stack = np.asfortranarray(np.stack(masks, axis=-1).astype(np.uint8))
        encoded: list[dict[str, Any]] = mask_utils.encode(stack)
        return encoded

    ious = mask_utils.iou(encode(production), encode(reference), [0] * len(reference))
    return np.asarray(ious, dtype=np.float64).reshape(len(production), len(reference))


def compare_instances(
    production: Sequence[Instance], reference: Sequence[Instance], *, min_iou: float = 0.1
) -> ShadowComparison:
    """Match production's instances to the reference's on one image and count per class.

    Parameters
    ----------
    production, reference
        ``(category_id, mask)`` per instance; masks are ``bool`` arrays of one size.
    min_iou
        Pairs below this IoU are not matched, in ``(0, 1]``.

    Returns
    -------
    ShadowComparison
        Matched pairs, per-class counts and the image's agreement.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> masks = [rng.random((16, 16)) < 0.3 for _ in range(3)]
    >>> same = compare_instances([(1, m) for m in masks], [(1, m) for m in masks])
    >>> same.agreement, same.classes[1].matched
    (1.0, 3)
    >>> relabeled = [(1, masks[0]), (2, masks[1])]  # masks[2] not found by the reference
    >>> c = compare_instances([(1, m) for m in masks], relabeled)
    >>> round(c.agreement, 4), c.classes[1]
    (0.3333, ClassAgreement(matched=2, production_only=1, reference_only=0, class_disagreements=1, ious=(1.0, 1.0)))
    """
    if not 0.0 < min_iou <= 1.0:
        raise InvalidInputError(f"min_iou must be in (0, 1], got {min_iou!r}")
    ious = mask_ious([m for _, m in production], [m for _, m in reference])
    candidate = np.where(ious >= min_iou, ious, 0.0)
    rows, cols = linear_sum_assignment(candidate, maximize=True)
    pairs = tuple(
        (int(r), int(c), float(ious[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if ious[r, c] >= min_iou
    )
    counts: dict[int, Counter[str]] = {}
    class_ious: dict[int, list[float]] = {}
    same_class_iou = 0.0
    for p, r, iou in pairs:
        cat = production[p][0]
        counts.setdefault(cat, Counter())["matched"] += 1
        class_ious.setdefault(cat, []).append(iou)
        if reference[r][0] != cat:
            counts[cat]["class_disagreements"] += 1
        else:
            same_class_iou += iou
    matched_p = {p for p, _, _ in pairs}
    matched_r = {r for _, r, _ in pairs}
    for i, (cat, _) in enumerate(production):
        if i not in matched_p:
            counts.setdefault(cat, Counter())["production_only"] += 1
    for j, (cat, _) in enumerate(reference):
        if j not in matched_r:
            counts.setdefault(cat, Counter())["reference_only"] += 1
    classes = {
        cat: ClassAgreement(
            matched=c["matched"],
            production_only=c["production_only"],
            reference_only=c["reference_only"],
            class_disagreements=c["class_disagreements"],
            ious=tuple(class_ious.get(cat, ())),
        )
        for cat, c in sorted(counts.items())
    }
    largest = max(len(production), len(reference))
    agreement = same_class_iou / largest if largest else 1.0
    return ShadowComparison(len(production), len(reference), pairs, classes, agreement)
