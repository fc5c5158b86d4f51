"""Metric families of the canary comparison, read from ``canary_results`` at scrape time.

Per (baseline, candidate, signal) the newest stored verdict counts (by ``window_end``,
then id), and only the pairs the newest canary run compared (their newest
``window_end`` is the newest of the table): a candidate that stopped serving, or a
baseline that was replaced, drops out of the metrics, and its alert resolves.

- ``segmon_canary_worse``: 1 when that verdict is ``worse``, else 0;
- ``segmon_canary_verdict``: a state set, one series per verdict of
  :data:`monitor.drift.compare.VERDICTS`, 1 for the current one;
- ``segmon_canary_min_p_value``: the smallest p-value of the signal's checks (absent
  without checks);
- ``segmon_canary_signal_mean``: the baseline's and the candidate's mean of each
  directed signal (``role`` baseline or candidate);
- ``segmon_canary_samples``: the samples each version had in the window.

A version compared in several pairs (one baseline, several candidates) has one mean and
one sample count per role and signal: the first pair's, by candidate name.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.drift.compare import VERDICTS
from monitor.prometheus import catalog as cat
from monitor.prometheus.families import MetricFamily, family
from monitor.storage.schema import CanaryResultRow

__all__ = ["canary_families"]


def _latest(session: Session) -> list[CanaryResultRow]:
    row = CanaryResultRow
    newest = session.scalar(select(func.max(row.window_end)))
    if newest is None:
        return []
    key = (row.baseline, row.candidate, row.signal)
    ranked = select(
        row.id,
        row.window_end,
        func.row_number()
        .over(partition_by=key, order_by=(row.window_end.desc(), row.id.desc()))
        .label("rank"),
    ).subquery()
    return list(
        session.scalars(
            select(row)
            .join(ranked, ranked.c.id == row.id)
            .where(ranked.c.rank == 1, ranked.c.window_end == newest)
            .order_by(*key)
        )
    )


def canary_families(session: Session) -> Iterator[MetricFamily]:
    """Verdicts, p-values, means and sample counts of the latest canary comparisons."""
    worse = family(cat.CANARY_WORSE)
    verdict = family(cat.CANARY_VERDICT)
    p_value = family(cat.CANARY_MIN_P_VALUE)
    means: dict[tuple[str, str, str], float] = {}
    samples: dict[tuple[str, str], float] = {}
    for r in _latest(session):
        labels = [r.baseline, r.candidate, r.signal]
        worse.add_metric(labels, 1.0 if r.verdict == "worse" else 0.0)
        for state in VERDICTS:
            verdict.add_metric([*labels, state], 1.0 if r.verdict == state else 0.0)
        if r.min_p_value is not None:
            p_value.add_metric(labels, float(r.min_p_value))
        for version, role, mean in (
            (r.baseline, "baseline", r.baseline_mean),
            (r.candidate, "candidate", r.candidate_mean),
        ):
            if mean is not None:
                means.setdefault((version, role, r.signal), float(mean))
        samples.setdefault((r.baseline, "baseline"), float(r.n_baseline))
        samples.setdefault((r.candidate, "candidate"), float(r.n_candidate))
    mean_family = family(cat.CANARY_SIGNAL_MEAN)
    for labels_key, value in sorted(means.items()):
        mean_family.add_metric(list(labels_key), value)
    sample_family = family(cat.CANARY_SAMPLES)
    for pair, n in sorted(samples.items()):
        sample_family.add_metric(list(pair), n)
    yield from (worse, verdict, p_value, mean_family, sample_family)
