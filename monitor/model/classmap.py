"""Class mapping for a reference model with other classes than production's.

A COCO-80 model shadowing a 4-class production model names its classes its own way.
``classes_map`` (in the model's config) renames a class (``person: human``), merges
several into one (``car: vehicle``, ``truck: vehicle``) or drops one (``kite: null``);
classes it does not list keep their names. With ``unmapped: ignore``, a class whose
(mapped) name is no configured category is left out too. Left-out instances are counted
by the model's own class name (:attr:`ClassMappedModel.ignored`), never silently lost.

A batch job that runs the model somewhere else (a Dask worker) reports what that run
left out with its results: :func:`predict_counting_ignored` returns the count of one
call, so the driver adds up what every worker's model left out.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from detectors._typing import ImageArray
from monitor.errors import ConfigError
from monitor.model.protocol import CountsIgnored, InstancePrediction, InstanceSegmenter


def mapping_digest(classes_map: Mapping[str, str | None], keep: Collection[str] | None) -> str:
    """Return 8 hex digits identifying a mapping (part of the mapped model's name).

    Examples
    --------
    >>> mapping_digest({"person": "human"}, None)
    'da2e272c'
    """
    payload = json.dumps(
        {"map": dict(sorted(classes_map.items())), "keep": sorted(keep) if keep else None},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


class ClassMappedModel:
    """A segmentation model whose classes are renamed, merged or left out.

    Parameters
    ----------
    model
        The wrapped model.
    classes_map
        Model class name -> new name, or None to leave the class out.
    keep
        With ``unmapped: ignore``, the configured category names: any other (mapped)
        class is left out. None keeps every class.
    where
        Names the model in messages.

    Raises
    ------
    ConfigError
        When ``classes_map`` names a class the model does not have, or nothing is left.

    Examples
    --------
    >>> class Coco3:
    ...     name, categories = "coco3", ("person", "car", "kite")
    ...     def predict(self, images):
    ...         mask, scores = np.ones((2, 2), bool), np.array([0.2, 0.5, 0.3], np.float32)
    ...         return [[InstancePrediction(c, 0.9, mask, scores) for c in (1, 2, 3)]]
    >>> mapped = ClassMappedModel(Coco3(), {"person": "human", "car": "vehicle"},
    ...                           keep={"human", "vehicle"})
    >>> found = mapped.predict([np.zeros((2, 2, 3), np.uint8)])[0]
    >>> mapped.categories, [(i.category_id, [round(float(s), 3) for s in i.class_scores]) for i in found]
    (('human', 'vehicle'), [(1, [0.286, 0.714]), (2, [0.286, 0.714])])
    >>> mapped.ignored, mapped.name
    (Counter({'kite': 1}), 'coco3+mapbff996ed')
    """

    def __init__(
        self,
        model: InstanceSegmenter,
        classes_map: Mapping[str, str | None],
        keep: Collection[str] | None = None,
        where: str = "model",
    ) -> None:
        unknown = sorted(set(classes_map) - set(model.categories))
        if unknown:
            shown = ", ".join(model.categories[:20])
            more = ", ..." if len(model.categories) > 20 else ""
            raise ConfigError(
                f"{where}: classes_map names {unknown[0]!r}, which is not a class of model "
                f"{model.name!r} ({shown}{more})"
            )
        targets: list[str | None] = []
        for name in model.categories:
            target = classes_map.get(name, name)
            if target is not None and keep is not None and target not in keep:
                target = None
            targets.append(target)
        self.categories: tuple[str, ...] = tuple(dict.fromkeys(t for t in targets if t is not None))
        if not self.categories:
            raise ConfigError(f"{where}: classes_map and unmapped leave no class of {model.name!r}")
        index = {name: i for i, name in enumerate(self.categories)}
        self._target = [None if t is None else index[t] for t in targets]
        self.inner = model
        self.name = f"{model.name}+map{mapping_digest(classes_map, keep)}"
        self.ignored: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.left_out = tuple(
            n for n, t in zip(model.categories, targets, strict=True) if t is None
        )
        """Model classes whose instances are left out."""

    def _map(self, inst: InstancePrediction, ignored: Counter[str]) -> InstancePrediction | None:
        source = inst.category_id - 1
        target = self._target[source]
        if target is None:
            ignored[self.inner.categories[source]] += 1
            return None
        merged = np.zeros(len(self.categories), dtype=np.float64)
        for i, score in enumerate(np.asarray(inst.class_scores, dtype=np.float64)):
            t = self._target[i] if i < len(self._target) else None
            if t is not None:
                merged[t] += score
        total = merged.sum()
        merged = merged / total if total > 0 else np.full_like(merged, 1.0 / len(merged))
        return InstancePrediction(target + 1, inst.score, inst.mask, merged.astype(np.float32))

    def predict_counted(
        self, images: Sequence[ImageArray]
    ) -> tuple[list[list[InstancePrediction]], Counter[str]]:
        """Predict as :meth:`predict` does; also return what this call left out, by class.

        The call's count is added to :attr:`ignored` too (thread-safe).
        """
        ignored: Counter[str] = Counter()
        found = [
            [m for m in (self._map(inst, ignored) for inst in instances) if m is not None]
            for instances in self.inner.predict(images)
        ]
        with self._lock:
            self.ignored.update(ignored)
        return found, ignored

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        """Predict with the wrapped model; map classes, leave out (and count) the rest."""
        return self.predict_counted(images)[0]


def predict_counting_ignored(
    model: InstanceSegmenter, images: Sequence[ImageArray]
) -> tuple[list[list[InstancePrediction]], Counter[str]]:
    """Predict, and return what the model left out in this call, by its class name.

    A :class:`ClassMappedModel` counts per call; another model that counts what it
    leaves out (:class:`~monitor.model.protocol.CountsIgnored`, e.g. a plugin) is
    read before and after; any other model leaves nothing out.

    Examples
    --------
    >>> class Two:
    ...     name, categories = "two", ("cat", "kite")
    ...     def predict(self, images):
    ...         mask, scores = np.ones((2, 2), bool), np.array([0.5, 0.5], np.float32)
    ...         return [[InstancePrediction(c, 0.9, mask, scores) for c in (1, 2, 2)]]
    >>> image = np.zeros((2, 2, 3), np.uint8)
    >>> mapped = ClassMappedModel(Two(), {"kite": None})
    >>> found, ignored = predict_counting_ignored(mapped, [image])
    >>> len(found[0]), ignored, predict_counting_ignored(Two(), [image])[1]
    (1, Counter({'kite': 2}), Counter())
    """
    if isinstance(model, ClassMappedModel):
        return model.predict_counted(images)
    if isinstance(model, CountsIgnored):
        before = Counter(model.ignored)
        found = model.predict(images)
        return found, Counter(model.ignored) - before
    return model.predict(images), Counter()
