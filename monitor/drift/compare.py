"""Canary comparison: a candidate model version against the baseline, at the same times.

Both sides are production samples of one span ``[start, end)``, split by
``samples.model_version``: the baseline version's are fitted, the candidate's scored.
Since both are read over the same span, a drift of the input both versions see (a
darker day, a new camera) is in both sides and is not blamed on the candidate; what
differs is what the candidate does differently.

The signals, each tested with the same calibrated detectors as the drift job:

``drift:<family>``
    Every feature of the drift families (:mod:`monitor.drift.features`), per class,
    with the detectors ``drift.detectors`` names; per-object features permute whole
    images. These have no direction: a significant difference is ``different``.
``shadow_agreement``
    Per image, the reference model's agreement with production (``shadow_scores``);
    lower is worse.
``uncertainty``
    Per image, the mean instance uncertainty (:func:`sampling.uncertainty.instance_uncertainty`
    at the production decision threshold); higher is worse.
``latency_ms``
    Per request, the logged latency; higher is worse.
``quality``
    Per labelled sample (a golden request, or a labelled production sample), production's
    masks scored against the labels with the shadow job's matcher
    (:mod:`monitor.drift.label_scores`: same-class matched IoU over the larger instance
    count); lower is worse.

A signal of several checks corrects for their number (Bonferroni: a check counts at
``p <= alpha / checks``), so a family of forty features does not flag by chance more
often than a single one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from detectors import DriftResult
from detectors._typing import Float64Array
from detectors.registry import make_detector
from monitor.config import DriftSettings
from monitor.drift.features import (
    FAMILIES,
    Population,
    VectorBudget,
    count_images,
    image_filter,
    latest_embedder,
    read_features,
    read_instances,
)
from monitor.drift.job import feature_checks, stable_seed
from monitor.drift.label_scores import label_scores
from monitor.errors import InvalidInputError, NotFoundError
from monitor.storage.schema import Category, ModelVersion, Sample, ShadowScore
from sampling.uncertainty import image_uncertainty, instance_uncertainty

Verdict = Literal["worse", "better", "no_difference", "different", "not_enough_data"]
Direction = Literal["higher_is_worse", "lower_is_worse", "none"]
VERDICTS: tuple[Verdict, ...] = ("worse", "better", "no_difference", "different", "not_enough_data")
DIRECTED_DETECTOR = "kolmogorov_smirnov"
"""The detector of the one-number-per-image signals (agreement, uncertainty, latency, quality)."""
DIRECTIONS: dict[str, Direction] = {
    "shadow_agreement": "lower_is_worse",
    "uncertainty": "higher_is_worse",
    "latency_ms": "higher_is_worse",
    "quality": "lower_is_worse",
}


@dataclass(frozen=True)
class CanaryCheck:
    """One calibrated test of the difference, baseline fitted, candidate scored."""

    signal: str
    family: str
    class_name: str
    detector: str
    result: DriftResult
    baseline_mean: float | None = None
    candidate_mean: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form."""
        r = self.result
        return {
            "signal": self.signal,
            "family": self.family,
            "feature": r.feature,
            "class_name": self.class_name,
            "detector": self.detector,
            "statistic": r.statistic,
            "threshold": r.threshold,
            "p_value": r.p_value,
            "significant": r.drift_detected,
            "n_baseline": r.n_reference,
            "n_candidate": r.n_current,
            "n_baseline_groups": r.n_reference_groups,
            "n_candidate_groups": r.n_current_groups,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
        }


@dataclass(frozen=True)
class SignalVerdict:
    """The verdict on one signal, from its checks."""

    signal: str
    verdict: Verdict
    checks: int
    significant: int
    min_p_value: float | None
    baseline_mean: float | None = None
    candidate_mean: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form."""
        return {
            "signal": self.signal,
            "verdict": self.verdict,
            "checks": self.checks,
            "significant": self.significant,
            "min_p_value": self.min_p_value,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
        }


@dataclass(frozen=True)
class CanaryComparison:
    """What ``segmon compare`` reports: per-signal verdicts and every check behind them."""

    baseline: str
    candidate: str
    start: datetime
    end: datetime
    n_baseline: int
    n_candidate: int
    signals: tuple[SignalVerdict, ...]
    checks: tuple[CanaryCheck, ...]

    def verdict(self, signal: str) -> Verdict:
        """Return the verdict on ``signal``.

        Raises
        ------
        NotFoundError
            If the comparison has no such signal.
        """
        for s in self.signals:
            if s.signal == signal:
                return s.verdict
        raise NotFoundError(f"no signal {signal!r}; known: {[s.signal for s in self.signals]}")

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form (what ``segmon compare --json`` prints)."""
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "signals": [s.as_dict() for s in self.signals],
            "checks": [c.as_dict() for c in self.checks],
        }


def decide(
    direction: Direction,
    significant: bool,
    baseline_mean: float | None = None,
    candidate_mean: float | None = None,
) -> Verdict:
    """Turn a significant (or not) difference into a verdict.

    Parameters
    ----------
    direction
        Which way is worse; ``"none"`` for distributions without one (drift features).
    significant
        Whether the calibrated test rejected "no difference".
    baseline_mean, candidate_mean
        The sides' means (needed with a direction).

    Examples
    --------
    >>> decide("lower_is_worse", True, 0.9, 0.6)
    'worse'
    >>> decide("higher_is_worse", True, 120.0, 80.0)
    'better'
    >>> decide("none", True), decide("higher_is_worse", False, 1.0, 2.0)
    ('different', 'no_difference')
    """
    if not significant:
        return "no_difference"
    if direction == "none":
        return "different"
    if baseline_mean is None or candidate_mean is None:
        raise InvalidInputError(f"a {direction} verdict needs both means")
    higher = candidate_mean > baseline_mean
    return "worse" if higher == (direction == "higher_is_worse") else "better"


def _significant(result: DriftResult, alpha: float, checks: int) -> bool:
    if result.p_value is None:
        return result.drift_detected
    return result.p_value <= alpha / max(checks, 1)


def summarize(signal: str, checks: Sequence[CanaryCheck], alpha: float) -> SignalVerdict:
    """Return the verdict on one signal from its checks (Bonferroni over them).

    Examples
    --------
    >>> r = DriftResult("ks", "latency_ms", 0.6, 0.2, 0.001, True, 50, 50)
    >>> summarize("latency_ms", [CanaryCheck("latency_ms", "", "", "ks", r, 80.0, 95.0)], 0.05)
    ... # doctest: +NORMALIZE_WHITESPACE
    SignalVerdict(signal='latency_ms', verdict='worse', checks=1, significant=1,
                  min_p_value=0.001, baseline_mean=80.0, candidate_mean=95.0)
    >>> summarize("latency_ms", [], 0.05).verdict
    'not_enough_data'
    """
    if not checks:
        return SignalVerdict(signal, "not_enough_data", 0, 0, None)
    flags = [_significant(c.result, alpha, len(checks)) for c in checks]
    ps = [c.result.p_value for c in checks if c.result.p_value is not None]
    direction = DIRECTIONS.get(signal, "none")
    first = checks[0]
    verdict = decide(direction, any(flags), first.baseline_mean, first.candidate_mean)
    return SignalVerdict(
        signal,
        verdict,
        len(checks),
        sum(flags),
        min(ps) if ps else None,
        first.baseline_mean if direction != "none" else None,
        first.candidate_mean if direction != "none" else None,
    )


def _version_exists(session: Session, name: str) -> None:
    if session.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is None:
        known = sorted(session.scalars(select(ModelVersion.name)))
        raise NotFoundError(f"no model version {name!r}; known: {known}")


def _agreement(session: Session, pop: Population) -> Float64Array:
    stmt = (
        select(func.avg(ShadowScore.agreement))
        .join(Sample, Sample.id == ShadowScore.sample_id)
        .where(image_filter(pop))
        .group_by(ShadowScore.sample_id)
        .order_by(ShadowScore.sample_id)
    )
    return np.asarray([float(v) for v in session.scalars(stmt)], dtype=np.float64)


def _latency(session: Session, pop: Population) -> Float64Array:
    stmt = (
        select(Sample.latency_ms)
        .where(image_filter(pop), Sample.latency_ms.is_not(None))
        .order_by(Sample.id)
    )
    return np.asarray([float(v or 0.0) for v in session.scalars(stmt)], dtype=np.float64)


def _uncertainty(session: Session, pop: Population, threshold: float) -> Float64Array:
    rows = [r for r in read_instances(session, pop) if r.score is not None]
    if not rows:
        return np.zeros(0, dtype=np.float64)
    ids = np.asarray([r.image_id for r in rows], dtype=np.int64)
    images, index = np.unique(ids, return_inverse=True)
    scores = np.asarray([r.score for r in rows], dtype=np.float64)
    per_instance = instance_uncertainty(scores, threshold=threshold)
    _, mean = image_uncertainty(per_instance, index, int(images.size))
    return np.asarray(mean, dtype=np.float64)


def _directed_check(
    settings: DriftSettings,
    signal: str,
    data: tuple[Float64Array, Float64Array],
    seed_parts: tuple[str, ...],
) -> CanaryCheck | None:
    base, cand = data
    if min(base.size, cand.size) < settings.min_samples:
        return None
    detector = make_detector(
        DIRECTED_DETECTOR,
        alpha=settings.alpha,
        seed=stable_seed(signal, DIRECTED_DETECTOR, *seed_parts),
        feature=signal,
    )
    try:
        result = detector.fit(base).score(cand)
    except InvalidInputError:  # constant on both sides: nothing to compare
        return None
    return CanaryCheck(
        signal, signal, "", DIRECTED_DETECTOR, result, float(base.mean()), float(cand.mean())
    )


def compare_versions(
    session: Session,
    settings: DriftSettings,
    baseline: str,
    candidate: str,
    span: tuple[datetime, datetime],
    *,
    uncertainty_threshold: float = 0.5,
    min_iou: float = 0.1,
) -> CanaryComparison:
    """Compare ``candidate`` with ``baseline`` on their samples of the same ``span``.

    Parameters
    ----------
    session
        An open session (read only).
    settings
        The ``drift:`` section: detectors per family, ``alpha``, ``min_samples``,
        embedder and vector budget.
    baseline, candidate
        Model version names (as in the sample log).
    span
        Event-time ``[start, end)`` both sides are read over.
    uncertainty_threshold
        The production model's decision threshold (``queue.uncertainty_threshold``).
    min_iou
        The matcher's minimum IoU of the ``quality`` signal (``shadow.min_iou``).

    Returns
    -------
    CanaryComparison
        One verdict per signal (``drift:<family>`` for each family, then
        ``shadow_agreement``, ``uncertainty``, ``latency_ms``, ``quality``) and every
        check.

    Raises
    ------
    NotFoundError
        If either version was never seen.
    InvalidInputError
        If baseline and candidate are the same version.
    """
    if baseline == candidate:
        raise InvalidInputError(f"baseline and candidate are both {baseline!r}")
    _version_exists(session, baseline)
    _version_exists(session, candidate)
    start, end = span
    label = f"{baseline}..{candidate}"
    base = Population(label=baseline, start=start, end=end, model_version=baseline)
    cand = Population(label=candidate, start=start, end=end, model_version=candidate)
    n_base, n_cand = count_images(session, base), count_images(session, cand)
    checks: list[CanaryCheck] = []
    if min(n_base, n_cand) >= settings.min_samples:
        class_names = {c.id: c.name for c in session.scalars(select(Category))}
        embedder = settings.embedder or latest_embedder(session)
        budget = VectorBudget(
            settings.max_vectors, settings.chunk_rows, settings.sample_seed, settings.max_values
        )
        base_features = read_features(session, base, FAMILIES, class_names, embedder, budget)
        cand_features = read_features(session, cand, FAMILIES, class_names, embedder, budget)
        skipped: Counter[str] = Counter()
        for stored in feature_checks(
            settings, base_features, cand_features, label, "compare", span, skipped, embedder
        ):
            signal = f"drift:{stored.family}"
            checks.append(
                CanaryCheck(
                    signal, stored.family, stored.class_name, stored.detector, stored.result
                )
            )
    seed_parts = (label, end.isoformat())
    directed = {
        "shadow_agreement": (_agreement(session, base), _agreement(session, cand)),
        "uncertainty": (
            _uncertainty(session, base, uncertainty_threshold),
            _uncertainty(session, cand, uncertainty_threshold),
        ),
        "latency_ms": (_latency(session, base), _latency(session, cand)),
        "quality": (
            label_scores(session, base, min_iou=min_iou),
            label_scores(session, cand, min_iou=min_iou),
        ),
    }
    for signal, data in directed.items():
        check = _directed_check(settings, signal, data, seed_parts)
        if check is not None:
            checks.append(check)
    names = [f"drift:{f}" for f in FAMILIES] + list(DIRECTIONS)
    signals = tuple(
        summarize(name, [c for c in checks if c.signal == name], settings.alpha) for name in names
    )
    return CanaryComparison(baseline, candidate, start, end, n_base, n_cand, signals, tuple(checks))
