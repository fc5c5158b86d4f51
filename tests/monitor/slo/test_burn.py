from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitor.errors import InvalidInputError, NotFoundError
from monitor.slo.burn import burn_rates, slo_status
from monitor.slo.spec import QualitySLI, SLOSpec

NOW = 1_000_000.0
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


def spec(objective: float = 0.9, min_events: int = 1, period: str = "30d") -> SLOSpec:
    return SLOSpec(
        name="q",
        objective=objective,
        period=period,
        sli=QualitySLI(),
        min_events=min_events,
        unreachable_tiers="cap",
    )


def test_windows_match_hand_computation() -> None:
    # Events (seconds before NOW, bad?):
    #   2m bad, 10m good, 40m bad, 90m good, 3h bad, 2d good, 10d bad, 40d bad (outside 30d)
    ages = [2 * MIN, 10 * MIN, 40 * MIN, 90 * MIN, 3 * HOUR, 2 * DAY, 10 * DAY, 40 * DAY]
    bad = [True, False, True, False, True, False, True, True]
    st = slo_status(spec(0.9), [NOW - a for a in ages], NOW, bad=bad)
    # Hand-counted (events, bad) per window.
    expected = {
        "5m": (1, 1),
        "30m": (2, 1),
        "1h": (3, 2),
        "2h": (4, 2),
        "6h": (5, 3),
        "1d": (5, 3),
        "3d": (6, 3),
        "30d": (7, 4),
    }
    assert [w.window for w in st.windows] == list(expected)
    for label, (n, b) in expected.items():
        w = st.window(label)
        assert (w.events, w.bad_events) == (n, b), label
        assert w.error_ratio == pytest.approx(b / n)
        assert w.raw_burn_rate == pytest.approx(b / n / 0.1)
        assert w.burn_rate == w.raw_burn_rate
        assert not w.guarded
    # Period: 4 bad of 7 with 10 % allowed -> allowed 0.7 bad -> 1 - 4/0.7.
    assert st.error_budget_remaining == pytest.approx(1 - 4 / 0.7)
    assert st.error_budget_remaining < 0  # overspent budgets go negative


def test_window_bounds_are_open_at_start_and_closed_at_now() -> None:
    times = [NOW - 5 * MIN, NOW - 5 * MIN + 1, NOW, NOW + 1]
    (w,) = burn_rates(times, NOW, bad=[1, 1, 0, 1], objective=0.5, windows=["5m"], min_events=0)
    # NOW - 5m is excluded, NOW is included, the future event is excluded.
    assert (w.events, w.bad_events) == (2, 1)


def test_late_arriving_sample_counts_in_its_capture_window() -> None:
    captured = [NOW - 20 * MIN, NOW - 2 * MIN]
    arrived = [NOW, NOW - 1 * MIN]  # the first, older sample arrived late, just now
    five, thirty = burn_rates(
        captured,
        NOW,
        bad=[True, False],
        objective=0.9,
        windows=["5m", "30m"],
        arrival_times=arrived,
        min_events=0,
    )
    assert (five.events, five.bad_events) == (1, 0)
    assert (thirty.events, thirty.bad_events) == (2, 1)
    # Evaluated before the late sample arrived, it is not known yet.
    earlier = NOW - 30
    five_e, thirty_e = burn_rates(
        captured,
        earlier,
        bad=[True, False],
        objective=0.9,
        windows=["5m", "30m"],
        arrival_times=arrived,
        min_events=0,
    )
    assert (thirty_e.events, thirty_e.bad_events) == (1, 0)
    assert five_e.events == 1


def test_empty_windows_are_zero_not_nan() -> None:
    st = slo_status(spec(0.99, min_events=5), [], NOW, bad=[])
    for w in st.windows:
        assert (w.events, w.bad_events) == (0, 0)
        assert w.error_ratio == 0.0 and w.burn_rate == 0.0 and w.raw_burn_rate == 0.0
        assert w.guarded
        assert math.isfinite(w.error_ratio)
    assert st.error_budget_remaining == 1.0


def test_min_events_guard_zeroes_alerting_burn_but_keeps_raw() -> None:
    times = [NOW - 1 * MIN, NOW - 2 * MIN, NOW - 40 * MIN]
    five, hour = burn_rates(
        times, NOW, bad=[True, True, False], objective=0.99, windows=["5m", "1h"], min_events=3
    )
    assert five.guarded and five.events == 2
    assert five.burn_rate == 0.0
    assert five.error_ratio == 1.0
    assert five.raw_burn_rate == pytest.approx(100.0)
    assert not hour.guarded
    assert hour.burn_rate == pytest.approx((2 / 3) / 0.01)


def test_good_total_counts_per_record() -> None:
    # Three evaluation records: 10 instances / 1 bad, 5 / 5, 4 / 0.
    times = [NOW - 1 * MIN, NOW - 10 * MIN, NOW - 2 * HOUR - 1]
    w5, w30, w1d = burn_rates(
        times, NOW, bad=[1, 5, 0], total=[10, 5, 4], objective=0.8,
        windows=["5m", "30m", "1d"], min_events=0,
    )  # fmt: skip
    assert (w5.events, w5.bad_events) == (10, 1)
    assert (w30.events, w30.bad_events) == (15, 6)
    assert (w1d.events, w1d.bad_events) == (19, 6)
    assert w30.burn_rate == pytest.approx((6 / 15) / 0.2)


def test_unsorted_input_and_datetimes_give_the_same_answer() -> None:
    rng = np.random.default_rng(3)
    t = NOW - rng.uniform(0, 4 * DAY, 500)
    bad = rng.random(500) < 0.2
    a = slo_status(spec(0.95), t, NOW, bad=bad)
    order = np.argsort(t)
    b = slo_status(spec(0.95), t[order], NOW, bad=bad[order])
    dts = [datetime.fromtimestamp(x, UTC) for x in t]
    c = slo_status(spec(0.95), dts, datetime.fromtimestamp(NOW, UTC), bad=bad)
    d64 = (t * 1e9).astype("datetime64[ns]")
    d = slo_status(spec(0.95), d64, NOW, bad=bad)
    assert a.windows == b.windows
    assert [(w.events, w.bad_events) for w in a.windows] == [
        (w.events, w.bad_events) for w in c.windows
    ]
    assert [(w.events, w.bad_events) for w in a.windows] == [
        (w.events, w.bad_events) for w in d.windows
    ]


def test_vectorised_counts_match_brute_force_on_many_events() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    t = NOW - rng.uniform(0, 31 * DAY, n)
    bad = rng.random(n) < 0.03
    st = slo_status(spec(0.99, min_events=20), t, NOW, bad=bad)
    for w in st.windows:
        inside = (t > NOW - w.window_seconds) & (t <= NOW)
        assert w.events == int(inside.sum())
        assert w.bad_events == int((inside & bad).sum())


def test_status_now_is_utc_and_window_lookup_names_missing() -> None:
    st = slo_status(spec(), [NOW], NOW, bad=[False])
    assert st.now == datetime.fromtimestamp(NOW, UTC)
    assert st.period == "30d"
    with pytest.raises(NotFoundError, match="'7d'"):
        st.window("7d")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bad": [2], "total": [1]}, "bad=2 greater than total=1"),
        ({"bad": [-1], "total": [1]}, "negative count -1"),
        ({"bad": [0.5]}, "whole counts"),
        ({"bad": [True, False]}, r"shape \(2,\)"),
        ({"bad": [True], "objective": 1.0}, "objective 1.0"),
        ({"bad": [True], "windows": ["5 minutes"]}, "'5 minutes'"),
    ],
)
def test_invalid_input_is_named(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"objective": 0.9, "windows": ["5m"], **kwargs}
    with pytest.raises((InvalidInputError, ValueError), match=match):
        burn_rates([NOW], NOW, **args)  # type: ignore[arg-type]  # bad values on purpose


def test_non_finite_event_time_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="non-finite"):
        burn_rates([float("nan")], NOW, bad=[True], objective=0.9, windows=["5m"])


def test_period_of_28_days_is_the_last_window() -> None:
    st = slo_status(spec(period="28d"), [NOW - 29 * DAY, NOW - 27 * DAY], NOW, bad=[1, 0])
    assert st.windows[-1].window == "28d"
    assert st.windows[-1].events == 1
    assert st.window("3d").events == 0
    assert timedelta(days=28).total_seconds() == st.windows[-1].window_seconds
