from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import binary_erosion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import MaskArray
from monitor.clock import ManualClock
from monitor.errors import InvalidInputError
from monitor.quality.shadow import ShadowReport, compare_instances, shadow_pending
from monitor.slo.events import read_sli_events
from monitor.slo.spec import default_slos
from monitor.storage.schema import Category, Sample, ShadowClassScore, ShadowScore
from tests.support.databases import MakeDatabase
from tests.support.hostile import write_png_claiming
from tests.support.mask_arrays import shift
from tests.support.model_scenes import FakeModel, Instance, ModelScenes, Transform, ingest

START = datetime(2026, 11, 24, tzinfo=UTC)
NAMES = ("disc", "box", "triangle", "star")


def square(y: int, x: int, size: int = 6, shape: tuple[int, int] = (32, 32)) -> MaskArray:
    mask = np.zeros(shape, dtype=bool)
    mask[y : y + size, x : x + size] = True
    return mask


def test_identical_instances_agree_fully() -> None:
    masks = [square(0, 0), square(10, 10), square(20, 2)]
    c = compare_instances(
        [(1, masks[0]), (2, masks[1]), (2, masks[2])], [(2, masks[2]), (1, masks[0]), (2, masks[1])]
    )
    assert c.agreement == 1.0 and c.mean_iou == 1.0
    assert sorted(c.pairs) == [(0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0)]
    assert {k: (v.matched, v.production_only, v.reference_only) for k, v in c.classes.items()} == {
        1: (1, 0, 0),
        2: (2, 0, 0),
    }


def test_nothing_on_either_side_is_full_agreement() -> None:
    c = compare_instances([], [])
    assert (c.agreement, c.n_matched, c.mean_iou, dict(c.classes)) == (1.0, 0, None, {})


def test_one_sided_images_have_no_agreement() -> None:
    only_reference = compare_instances([], [(3, square(0, 0)), (3, square(9, 9))])
    assert only_reference.agreement == 0.0
    assert only_reference.classes[3].reference_only == 2
    only_production = compare_instances([(4, square(0, 0))], [])
    assert only_production.agreement == 0.0 and only_production.classes[4].production_only == 1


def test_pairs_below_min_iou_stay_unmatched_and_are_counted_on_their_sides() -> None:
    a, b = square(0, 0, size=10), square(8, 8, size=10)  # IoU 4 / 196
    c = compare_instances([(1, a)], [(2, b)], min_iou=0.1)
    assert c.n_matched == 0 and c.agreement == 0.0
    assert (c.classes[1].production_only, c.classes[2].reference_only) == (1, 1)
    low = compare_instances([(1, a)], [(1, b)], min_iou=0.01)
    assert low.n_matched == 1 and low.agreement == pytest.approx(4 / 196)
    with pytest.raises(InvalidInputError, match="min_iou must be in"):
        compare_instances([], [], min_iou=0.0)


def test_matching_maximises_total_iou_one_to_one() -> None:
    big = square(0, 0, size=10)
    near_big = square(0, 1, size=10)  # IoU 90/110 with big
    small = square(0, 0, size=5)  # IoU 25/100 with big, 20/105 with near_big
    c = compare_instances([(1, big), (1, small)], [(1, near_big), (1, small)])
    assert sorted((p, r) for p, r, _ in c.pairs) == [(0, 0), (1, 1)]
    assert c.agreement == pytest.approx((90 / 110 + 1.0) / 2)


def strip(*ranges: tuple[int, int]) -> MaskArray:
    mask = np.zeros((1, 40), dtype=bool)
    for start, stop in ranges:
        mask[0, start:stop] = True
    return mask


def test_pairs_below_min_iou_do_not_steal_a_better_assignment() -> None:
    production = [(1, strip((0, 10))), (1, strip((11, 20)))]
    # IoUs: production 0 ~ reference 0: 10/20, ~ reference 1: 1/18; production 1 ~ ref 0: 9/20
    reference = [(1, strip((0, 20))), (1, strip((9, 10), (30, 38)))]
    c = compare_instances(production, reference, min_iou=0.1)
    assert c.pairs == ((0, 0, 0.5),)
    assert c.agreement == 0.25 and c.classes[1].production_only == 1


def test_relabeled_instance_is_a_class_disagreement_under_productions_class() -> None:
    masks = [square(0, 0), square(12, 12)]
    c = compare_instances([(1, masks[0]), (3, masks[1])], [(1, masks[0]), (2, masks[1])])
    assert c.classes[3].class_disagreements == 1 and c.classes[3].matched == 1
    assert c.classes[3].ious == (1.0,) and 2 not in c.classes
    assert c.agreement == 0.5


# --- the shadow job on generated scenes -------------------------------------------------------


def erode(n: int) -> Transform:
    return lambda labels: [(c, binary_erosion(m, iterations=n)) for c, m in labels]


def moved(d: int) -> Transform:
    return lambda labels: [(c, shift(m, d, d)) for c, m in labels]


def run_shadow(
    sessions: sessionmaker[Session],
    scenes: ModelScenes,
    log: Path,
    transform: Transform,
    **kwargs: Any,
) -> ShadowReport:
    ingest(sessions, scenes.write_log(log, transform), ManualClock(START))
    return shadow_pending(sessions, scenes.reference(), ManualClock(START), batch_size=3, **kwargs)


def class_totals(sessions: sessionmaker[Session]) -> dict[str, tuple[int, int, int, int]]:
    row = ShadowClassScore
    with sessions() as s:
        found = s.execute(
            select(
                Category.name,
                func.sum(row.matched),
                func.sum(row.production_only),
                func.sum(row.reference_only),
                func.sum(row.class_disagreements),
            )
            .join(Category, Category.id == row.category_id)
            .group_by(Category.name)
        ).all()
    return {name: (int(m), int(p), int(r), int(d)) for name, m, p, r, d in found}


def agreements(sessions: sessionmaker[Session]) -> list[float]:
    with sessions() as s:
        return list(
            s.scalars(select(ShadowScore.agreement).join(Sample).order_by(Sample.request_id))
        )


def label_counts(scenes: ModelScenes) -> Counter[str]:
    return Counter(NAMES[c - 1] for labels in scenes.labels.values() for c, _ in labels)


def test_production_equal_to_reference_agrees_exactly(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    report = run_shadow(sessions, model_scenes, tmp_path / "log", lambda labels: labels)
    assert report.samples == 8 and agreements(sessions) == [1.0] * 8
    assert class_totals(sessions) == {
        name: (n, 0, 0, 0) for name, n in label_counts(model_scenes).items()
    }
    with sessions() as s:
        ious = [i for row in s.scalars(select(ShadowClassScore.ious)) for i in row]
    assert ious == [1.0] * sum(label_counts(model_scenes).values())


def test_agreement_falls_as_production_masks_degrade(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    ladders: dict[str, list[Transform]] = {
        "erode": [lambda labels: labels, erode(1), erode(2)],
        "shift": [moved(d) for d in (0, 1, 2, 4)],
    }
    for kind, ladder in ladders.items():
        means = []
        for level, transform in enumerate(ladder):
            sessions = make_db(f"{kind}{level}")
            run_shadow(sessions, model_scenes, tmp_path / f"{kind}{level}", transform)
            means.append(float(np.mean(agreements(sessions))))
        assert means[0] == 1.0
        assert all(a > b for a, b in zip(means, means[1:], strict=False)), (kind, means)


def drop_last(labels: list[Instance]) -> list[Instance]:
    return labels[:-1]


def relabel_first(labels: list[Instance]) -> list[Instance]:
    return [(c % 4 + 1, m) if i == 0 else (c, m) for i, (c, m) in enumerate(labels)]


def test_dropped_and_relabeled_instances_are_counted_exactly(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    labels = [model_scenes.labels[f"r-{i:06d}.png"] for i in range(8)]
    expected_agreement = [(len(v) - 1) / len(v) if v else 1.0 for v in labels]
    sessions = make_db("drop")
    report = run_shadow(sessions, model_scenes, tmp_path / "drop", drop_last)
    dropped = Counter(NAMES[v[-1][0] - 1] for v in labels if v)
    counts = label_counts(model_scenes)
    assert class_totals(sessions) == {
        name: (counts[name] - dropped[name], 0, dropped[name], 0) for name in counts
    }
    assert agreements(sessions) == pytest.approx(expected_agreement)
    assert (report.reference_only, report.production_only) == (sum(dropped.values()), 0)

    sessions = make_db("relabel")
    run_shadow(sessions, model_scenes, tmp_path / "relabel", relabel_first)
    moved = Counter(NAMES[v[0][0] % 4] for v in labels if v)  # the class production now says
    totals = class_totals(sessions)
    assert {name: t[3] for name, t in totals.items() if t[3]} == dict(moved)
    assert sum(t[0] for t in totals.values()) == sum(counts.values())
    assert all(t[1] == t[2] == 0 for t in totals.values())
    assert agreements(sessions) == pytest.approx(expected_agreement)


def test_rerun_scores_nothing_new(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    run_shadow(sessions, model_scenes, tmp_path / "log", drop_last)
    before = class_totals(sessions), agreements(sessions)
    model = model_scenes.reference()
    again = shadow_pending(sessions, model, ManualClock(START + timedelta(hours=1)))
    assert again.samples == 0 and model.calls == 0
    assert (class_totals(sessions), agreements(sessions)) == before
    assert (
        shadow_pending(sessions, model_scenes.reference(name="other"), ManualClock(START)).samples
        == 8
    )


def test_reference_class_unknown_to_the_config_is_an_error(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    ingest(sessions, model_scenes.write_log(tmp_path / "log", drop_last), ManualClock(START))
    model = FakeModel(categories=("disc", "hexagon"))
    with pytest.raises(InvalidInputError, match="class 'hexagon', which is not a configured"):
        shadow_pending(sessions, model, ManualClock(START))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ShadowScore)) == 0


def test_limit_and_progress(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    seen: list[tuple[int, int]] = []
    report = run_shadow(
        sessions,
        model_scenes,
        tmp_path / "log",
        drop_last,
        limit=5,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert report.samples == 5 and seen == [(3, 5), (5, 5)]


def test_slo_events_read_the_stored_shadow_rows(
    sessions: sessionmaker[Session], model_scenes: ModelScenes, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: the shadow SLO's events are the stored counts."""
    run_shadow(sessions, model_scenes, tmp_path / "log", drop_last)
    [spec] = [s for s in default_slos() if s.name == "mask-quality-shadow"]
    last = max(
        datetime.fromisoformat(r["captured_at"].replace("Z", "+00:00"))
        for r in model_scenes.records
    )
    with sessions() as session:
        events = read_sli_events(session, spec, max(last, START) + timedelta(minutes=1))
    labels = list(model_scenes.labels.values())
    # one event per label (matched or reference-only); bad: the dropped, reference-only ones
    assert events.n_events == sum(len(v) for v in labels)
    assert int(events.bad.sum()) == sum(1 for v in labels if v)
    assert len(events.event_times) == sum(1 for v in labels if v)


def test_an_image_swapped_for_a_huge_one_is_quarantined_not_a_failure(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels)
    ingest(sessions, log, ManualClock(START))
    write_png_claiming(log / "images" / "r-000005.png", 30000, 30000)
    report = shadow_pending(sessions, model_scenes.reference(), ManualClock(START))
    assert report.samples == 7
    assert dict(report.quarantined) == {"image_too_large": 1}
    with sessions() as s:
        reason = s.scalar(select(Sample.quarantine_reason).where(Sample.request_id == "r-000005"))
    assert reason == "image_too_large"
