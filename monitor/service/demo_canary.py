"""The demo's canary: on the drifted day, a share of production runs a candidate version.

A real rollout sends a share of the traffic to a candidate model version and compares
it with the stable one over the same hours. The demo does the same on its drifted day:
:func:`add_canary` routes a share of the day's requests (the outage's too: an outage
hits every version) to :data:`CANDIDATE_VERSION` by weighted round robin, as a load
balancer splits traffic, and after the day
:func:`compare_canary` runs :func:`monitor.drift.compare.compare_versions` over it.

The candidate is made up, and the demo says so: there is no second model. Its answers
are the stable model's answers to the same requests with every mask shifted
:data:`SHIFT_PX` pixels right and down, as a candidate whose mask head is off by one
16-pixel cell would answer. Classes, scores and latencies are the stable model's (an
instance shifted wholly off the image is dropped, which is rare). So the candidate
should come out worse on ``shadow_agreement``, the reference model's masks no longer
lining up with its own, while the input both versions see is the same drifted day:
the families that describe the images (``drift:image_embedding``,
``drift:image_properties``) find no difference between them, although the day
drifted. The families computed from production's own masks may tell the versions
apart where the shift shows (``drift:instance_embedding`` pools the embedding inside
each mask; ``drift:mask_geometry`` sees masks clipped at the image's edge): that is
what the candidate does differently, and the comparison says so as ``different``.

The comparison is ``segmon run``'s canary job (:func:`monitor.drift.canary.run_canary`)
run at the day's end: its verdicts are stored in ``canary_results``, exported as
``segmon_canary_*`` and read by the ``SegmonCanaryWorse`` rule
(:func:`monitor.service.demo_alerts.canary_alerts` evaluates it over the export).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import shift as shift_image
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.drift.canary import run_canary
from monitor.drift.compare import CanaryComparison
from monitor.errors import InvalidInputError
from monitor.masks import decode_mask, encode_mask
from monitor.service.demo_outage import OUTAGE_FILE
from monitor.slo.duration import format_duration
from monitor.synth.writer import SAMPLES_FILE

__all__ = [
    "CANDIDATE_VERSION",
    "SHIFT_PX",
    "CanarySplit",
    "DemoCanary",
    "add_canary",
    "canary_requests",
    "compare_canary",
    "shift_instance",
]

CANDIDATE_VERSION = "prod-2026.11.2-rc1"
"""The model version the demo's canary requests carry."""

SHIFT_PX = 16
"""How far right and down the made-up candidate shifts every mask of the stable model
(one cell of a stride-16 mask head)."""


@dataclass(frozen=True)
class CanarySplit:
    """Which requests of a day's log :func:`add_canary` gave to the candidate.

    Attributes
    ----------
    baseline, candidate
        The stable version (as the log had it) and the candidate's.
    share
        The share asked for, in ``[0, 1]``.
    requests, total
        Requests given to the candidate, of all the day's requests.
    shift_px
        How far the candidate's masks are shifted (right and down).
    dropped_instances
        Instances shifted wholly off the image (the candidate answers without them).
    """

    baseline: str
    candidate: str
    share: float
    requests: int
    total: int
    shift_px: int
    dropped_instances: int = 0

    @property
    def perturbation(self) -> str:
        """What makes the candidate worse, in words (the demo prints it)."""
        return (
            f"made up by the demo: the stable model's answers with every mask shifted "
            f"{self.shift_px} px right and down (classes, scores and latencies unchanged)"
        )


@dataclass(frozen=True)
class DemoCanary:
    """The canary of the drifted day: the split and the comparison of the two versions."""

    split: CanarySplit
    comparison: CanaryComparison

    @property
    def worse(self) -> tuple[str, ...]:
        """The signals on which the candidate is worse (what a canary alert would name)."""
        return tuple(s.signal for s in self.comparison.signals if s.verdict == "worse")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form: the full comparison plus how the canary was made."""
        return {
            **self.comparison.as_dict(),
            "share": self.split.share,
            "requests": self.split.requests,
            "total_requests": self.split.total,
            "dropped_instances": self.split.dropped_instances,
            "perturbation": self.split.perturbation,
            "worse": list(self.worse),
        }


def shift_instance(instance: dict[str, Any], shift_px: int) -> dict[str, Any] | None:
    """Return a sample-log instance with its mask shifted ``shift_px`` right and down.

    The mask (compressed RLE) and its bbox change; everything else is kept. Returns
    None when nothing of the mask is left on the image.

    Examples
    --------
    >>> m = np.zeros((6, 6), dtype=bool); m[1:3, 1:3] = True
    >>> rle = encode_mask(m)
    >>> inst = {"category_id": 1, "score": 0.9, "bbox": list(rle.bbox),
    ...         "segmentation": {"size": [6, 6], "counts": rle.counts}}
    >>> moved = shift_instance(inst, 2)
    >>> moved["bbox"], moved["score"], inst["bbox"]
    ([3.0, 3.0, 2.0, 2.0], 0.9, [1.0, 1.0, 2.0, 2.0])
    >>> shift_instance(inst, 5) is None
    True
    """
    height, width = instance["segmentation"]["size"]
    mask = decode_mask(instance["segmentation"]["counts"], height, width)
    moved = shift_image(mask, (shift_px, shift_px), order=0, cval=False)
    if not moved.any():
        return None
    rle = encode_mask(np.asarray(moved, dtype=bool))
    return {
        **instance,
        "bbox": list(rle.bbox),
        "segmentation": {"size": [height, width], "counts": rle.counts},
    }


def canary_requests(n: int, share: float) -> list[int]:
    """Which of ``n`` requests in a row a weighted round robin gives to the candidate.

    Request ``i`` goes to the candidate when ``floor((i + 1) * share)`` passes
    ``floor(i * share)``: ``floor(n * share)`` requests, spread evenly.

    Examples
    --------
    >>> canary_requests(10, 0.3), canary_requests(4, 0.5), canary_requests(3, 0.0)
    ([3, 6, 9], [1, 3], [])
    """
    return [i for i in range(n) if math.floor((i + 1) * share) > math.floor(i * share)]


def add_canary(
    log_dir: Path,
    *,
    share: float,
    candidate: str = CANDIDATE_VERSION,
    shift_px: int = SHIFT_PX,
) -> CanarySplit:
    """Give ``share`` of the requests in ``log_dir`` to ``candidate``.

    Reads the day's ``samples.jsonl`` and, where there is one, its outage file; in each
    file the requests :func:`canary_requests` picks (so both versions get the same share
    of the outage) get ``model_version = candidate`` and its masks shifted
    (:func:`shift_instance`). Nothing is written when no request is chosen, so a share
    of 0 leaves the log byte for byte as it was.

    Raises
    ------
    InvalidInputError
        If ``share`` is not in ``[0, 1]``, ``shift_px`` is negative, or the log holds
        no requests or several model versions.
    """
    if not 0.0 <= share <= 1.0:
        raise InvalidInputError(f"canary share must be in [0, 1], got {share!r}")
    if shift_px < 0:
        raise InvalidInputError(f"shift_px must be >= 0, got {shift_px!r}")
    files = [p for p in (log_dir / SAMPLES_FILE, log_dir / OUTAGE_FILE) if p.exists()]
    records = [[json.loads(line) for line in p.read_text().splitlines()] for p in files]
    versions = {r["model_version"] for lines in records for r in lines}
    if len(versions) != 1:
        raise InvalidInputError(f"a canary needs one stable version in {log_dir}, got {versions}")
    baseline = versions.pop()
    if baseline == candidate:
        raise InvalidInputError(f"the candidate {candidate!r} is already the stable version")
    requests = dropped = 0
    for path, lines in zip(files, records, strict=True):
        chosen = canary_requests(len(lines), share)
        for k in chosen:
            moved = [shift_instance(inst, shift_px) for inst in lines[k]["instances"]]
            dropped += sum(m is None for m in moved)
            lines[k]["instances"] = [m for m in moved if m is not None]
            lines[k]["model_version"] = candidate
        if chosen:
            path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in lines))
        requests += len(chosen)
    total = sum(len(lines) for lines in records)
    return CanarySplit(baseline, candidate, share, requests, total, shift_px, dropped)


def compare_canary(
    sessions: sessionmaker[Session],
    settings: Settings,
    split: CanarySplit,
    span: tuple[datetime, datetime],
) -> DemoCanary:
    """Run the canary job over ``span`` for the candidate of ``split``; its rows are stored.

    This is ``segmon run``'s canary job (:func:`monitor.drift.canary.run_canary`) with
    the demo's two versions named and its clock at the end of ``span``, so ``/metrics``
    then exports ``segmon_canary_*`` and ``SegmonCanaryWorse`` can fire on it.
    ``drift.min_samples`` is lowered to half the candidate's requests when that is
    smaller (as the demo's drift windows are), so a small demo still compares.
    """
    min_samples = min(settings.drift.min_samples, max(2, split.requests // 2))
    window = format_duration(span[1] - span[0])
    job_settings = settings.model_copy(
        update={
            "drift": settings.drift.model_copy(update={"min_samples": min_samples}),
            "canary": settings.canary.model_copy(
                update={
                    "baseline": split.baseline,
                    "candidates": [split.candidate],
                    "window": window,
                }
            ),
        }
    )
    report = run_canary(sessions, job_settings, ManualClock(span[1]))
    if len(report.comparisons) != 1:
        raise InvalidInputError(
            f"the canary job compared {len(report.comparisons)} candidates of "
            f"{split.candidate!r} over {window}: {report.skipped or 'no samples'}"
        )
    return DemoCanary(split, report.comparisons[0])
