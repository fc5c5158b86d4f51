"""SLI events read from the results tables vs. hand computations, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import InvalidInputError
from monitor.slo.burn import SLOStatus
from monitor.slo.events import read_sli_events, read_slo_status, read_slo_statuses
from monitor.slo.spec import AvailabilitySLI, DriftSLI, QualitySLI, SLOSpec
from tests.support.result_rows import NOW, Rows

DISC, BOX = 1, 2
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")


def _shadow(name: str = "shadow", class_name: str | None = None, min_events: int = 6) -> SLOSpec:
    return SLOSpec(
        name=name,
        objective=0.85,
        period="30d",
        sli=QualitySLI(source="shadow", class_name=class_name, iou_threshold=0.5),
        min_events=min_events,
        unreachable_tiers="cap",  # 0.85: max burn 6.7, below the 14.4x page tier
    )


def _counts(status: SLOStatus) -> dict[str, tuple[int, int]]:
    return {w.window: (w.events, w.bad_events) for w in status.windows}


def test_shadow_events_by_capture_time(sessions: sessionmaker[Session], rows: Rows) -> None:
    now = NOW
    m = timedelta(minutes=1)
    # In the 5m window: disc 2 pairs (0.9 good, 0.3 bad) + 1 production-only;
    # box 1 good pair + 1 reference-only. Events 5, bad 3.
    rows.shadow(now - 2 * m, now - 1 * m, {DISC: ([0.9, 0.3], 1, 0), BOX: ([0.7], 0, 1)})
    # Captured 20 min ago but scored only a minute ago (late): counts at its capture time.
    rows.shadow(now - 20 * m, now - 1 * m, {DISC: ([0.6, 0.55, 0.8], 0, 0)})
    # 45 min ago: one box pair below the threshold.
    rows.shadow(now - 45 * m, now - 30 * m, {BOX: ([0.1], 0, 0)})
    # Not arrived yet at `now` (scored in the future): left out everywhere.
    rows.shadow(now - 3 * 60 * m, now + 60 * m, {DISC: ([0.2], 5, 5)})
    # Older than the period, and after `now`: left out.
    rows.shadow(now - timedelta(days=31), now - timedelta(days=31), {DISC: ([0.2], 1, 1)})
    rows.shadow(now + 5 * m, now - 1 * m, {DISC: ([0.2], 1, 1)})
    rows.session.commit()

    with sessions() as session:
        status = read_slo_status(session, _shadow(), now)
        box = read_slo_status(session, _shadow("box", class_name="box"), now)
    expected = {"5m": (5, 3), "30m": (8, 3), "1h": (9, 4)}
    expected.update({w: (9, 4) for w in ("2h", "6h", "1d", "3d", "30d")})
    assert _counts(status) == expected
    five = status.window("5m")
    assert five.guarded and five.burn_rate == 0.0  # 5 events < min_events 6
    assert five.raw_burn_rate == pytest.approx((3 / 5) / 0.15)
    thirty = status.window("30m")
    assert not thirty.guarded and thirty.burn_rate == pytest.approx((3 / 8) / 0.15)
    assert status.error_budget_remaining == pytest.approx(1 - (4 / 9) / 0.15)
    # Per class: only the box rows count.
    assert _counts(box)["5m"] == (2, 1) and _counts(box)["1h"] == (3, 2)


def test_holdout_events_are_every_evaluation_at_the_slo_threshold(
    sessions: sessionmaker[Session], rows: Rows
) -> None:
    now = NOW
    rows.quality(now - timedelta(minutes=10), [(DISC, "disc", 8, 1, 1), (BOX, "box", 5, 3, 2)])
    rows.quality(now - timedelta(hours=3), [(DISC, "disc", 1, 9, 9)], iou_threshold=0.75)
    rows.quality(now - timedelta(days=2), [(DISC, "disc", 10, 0, 0)])
    rows.session.commit()
    spec = SLOSpec(
        name="holdout",
        objective=0.9,
        sli=QualitySLI(source="holdout"),
        min_events=1,
        unreachable_tiers="cap",
    )
    with sessions() as session:
        status = read_slo_status(session, spec, now)
        disc = read_slo_status(
            session,
            spec.model_copy(update={"sli": QualitySLI(source="holdout", class_name="disc")}),
            now,
        )
    counts = _counts(status)
    assert counts["5m"] == (0, 0)
    assert counts["30m"] == counts["1d"] == (20, 7)  # the 0.75 evaluation does not count
    assert counts["3d"] == counts["30d"] == (30, 7)
    assert _counts(disc)["3d"] == (20, 2)
    assert status.window("1h").burn_rate == pytest.approx((7 / 20) / 0.1)


def test_drift_events_per_check_of_the_family(sessions: sessionmaker[Session], rows: Rows) -> None:
    now = NOW
    rows.drift(now - timedelta(minutes=10), True)
    rows.drift(now - timedelta(minutes=10), False, feature="brightness")
    rows.drift(now - timedelta(minutes=90), True)
    rows.drift(now - timedelta(minutes=5), True, family="image_properties")
    rows.session.commit()
    spec = SLOSpec(
        name="drift", objective=0.95, sli=DriftSLI(feature_family="image_embedding"), min_events=1
    )
    with sessions() as session:
        events = read_sli_events(session, spec, now)
        status = read_slo_status(session, spec, now)
    assert events.n_events == 3 and events.bad.tolist() == [1, 1]  # two distinct check times
    counts = _counts(status)
    assert counts["5m"] == (0, 0) and counts["30m"] == (2, 1) and counts["2h"] == (3, 2)
    assert status.window("30m").burn_rate == pytest.approx(0.5 / 0.05)


def test_empty_database_gives_zeros_not_nan(sessions: sessionmaker[Session]) -> None:
    slos = [
        _shadow(),
        SLOSpec(name="h", objective=0.99, sli=QualitySLI()),
        SLOSpec(name="d", objective=0.99, sli=DriftSLI(feature_family="x")),
        SLOSpec(name="svc", objective=0.99, sli=AvailabilitySLI(), service="inference"),
    ]
    with sessions() as session:
        statuses = read_slo_statuses(session, slos, NOW)
        with pytest.raises(InvalidInputError, match="'svc'"):
            read_slo_status(session, slos[-1], NOW)
    assert [s.slo for s in statuses] == ["shadow", "h", "d"]  # Prometheus computes "svc"
    for status in statuses:
        assert tuple(w.window for w in status.windows) == WINDOWS
        for w in status.windows:
            assert (w.events, w.error_ratio, w.burn_rate, w.guarded) == (0, 0.0, 0.0, True)
            assert math.isfinite(w.raw_burn_rate)
        assert status.error_budget_remaining == 1.0
