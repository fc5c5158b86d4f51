"""An SLO looked back on: burn rates per step and the alerts that would have fired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitor.slo.events import read_slo_history, read_slo_status
from monitor.slo.spec import DriftSLI, SLOSpec
from tests.support.result_rows import NOW, Rows

H = timedelta(hours=1)


def test_backfilled_drift_checks_show_when_the_ticket_would_have_fired(
    sessions: sessionmaker[Session], rows: Rows
) -> None:
    """SQLite and PostgreSQL: checks computed today (a backfill) count at their window end."""
    spec = SLOSpec(
        name="image-drift",
        objective=0.9,
        sli=DriftSLI(feature_family="image_embedding"),
        min_events=4,
        page=False,
    )
    start = NOW - 48 * H
    backfilled_at = NOW + 10 * H  # every row was computed after the period
    for k in range(1, 49):  # 4 checks a window, hourly; drift from 24 h in, for 12 h
        end = start + k * H
        drifted = 24 < k <= 36
        for d in range(4):
            rows.drift(end, drifted, detector=f"d{d}", computed_at=backfilled_at)
    rows.session.commit()
    with sessions() as s:
        history = read_slo_history(s, spec, start, NOW, H)
        live = read_slo_status(s, spec, start + 30 * H)
    assert len(history.points) == 48
    assert [p.status.now for p in history.points] == [start + k * H for k in range(1, 49)]
    # Ticket: burn > 3 over 1d and 2h, or > 1 over 3d and 6h (error ratio 1.0 = 10x).
    # The first drifted window ends at 25 h; the 3d window (data from 1 h on) burns above
    # 1 once 3 of 27 windows are bad (27 h), with the 6h window well above 1.
    [episode] = history.episodes
    assert episode.severity == "ticket"
    assert episode.started == start + 27 * H
    # At 26 h the short windows burn at 10x, but neither long window is over its factor.
    assert history.points[25].status.window("2h").raw_burn_rate == pytest.approx(10.0)
    assert history.points[25].firing == ()
    # Quiet again once the 2h window (3x) and the 6h window (1x) are clean: 36 + 6 h.
    assert episode.ended == start + 42 * H
    assert all(p.firing == () for p in history.points[:24])
    assert history.points[30].firing == ("ticket",)
    at_30 = history.points[29].status.window("2h")
    assert (at_30.events, at_30.bad_events) == (8, 8)
    # The live view at that instant had not seen the backfilled rows: no events at all.
    assert live.window("2h").events == 0
