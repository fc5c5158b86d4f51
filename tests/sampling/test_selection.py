from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from sampling import CandidateTable, InvalidSignalError, SelectionPolicy, select

NAN = float("nan")


def table(
    priority: Sequence[float],
    *,
    embeddings: np.ndarray | None = None,
    hashes: Sequence[str | None] | None = None,
    classes: Sequence[set[int]] | None = None,
    n_instances: Sequence[int] | None = None,
    signals: Mapping[str, Sequence[float]] | None = None,
) -> CandidateTable:
    n = len(priority)
    return CandidateTable(
        keys=np.arange(1000, 1000 + n, dtype=np.int64),
        signals={
            k: np.asarray(v, float) for k, v in (signals or {"uncertainty_max": priority}).items()
        },
        embeddings=embeddings,
        image_hashes=list(hashes) if hashes is not None else [None] * n,
        classes=[frozenset(c) for c in classes] if classes is not None else [frozenset()] * n,
        n_instances=np.asarray(n_instances if n_instances is not None else [1] * n, dtype=np.int64),
    )


def keys(selection_items: object) -> list[int]:
    return [item.key - 1000 for item in selection_items]  # type: ignore[attr-defined]


def test_without_embeddings_the_top_priorities_in_descending_order() -> None:
    chosen = select(table([0.1, 0.9, 0.5, 0.7, 0.3]), SelectionPolicy(max_items=3))
    assert keys(chosen.items) == [1, 3, 2]
    assert [item.priority for item in chosen.items] == [0.9, 0.7, 0.5]
    assert chosen.n_candidates == 5 and chosen.n_duplicates == 0


def test_max_items_zero_chooses_nothing() -> None:
    assert select(table([0.5, 0.6]), SelectionPolicy(max_items=0)).items == ()


def test_crowded_images_cost_more_of_an_instance_budget() -> None:
    # The top image has 8 instances: with 5 instances left it is passed over.
    t = table([0.9, 0.8, 0.7, 0.6], n_instances=[8, 2, 0, 3])
    chosen = select(t, SelectionPolicy(max_items=10, max_instances=5))
    # 0.8 costs 2, 0.7 (empty) costs 1, 0.6 would make 6 > 5.
    assert keys(chosen.items) == [1, 2]
    assert chosen.n_instances == 2
    # All four cost 8 + 2 + 1 + 3 = 14 (the empty image costs one), though they hold 13.
    assert len(select(t, SelectionPolicy(max_items=10, max_instances=13)).items) == 3
    loose = select(t, SelectionPolicy(max_items=10, max_instances=14))
    assert keys(loose.items) == [0, 1, 2, 3] and loose.n_instances == 13


def test_a_rare_class_with_low_priority_still_gets_its_minimum() -> None:
    priority = [0.9, 0.85, 0.8, 0.75, 0.7, 0.05, 0.04, 0.03]
    classes = [{1}, {1}, {1}, {1}, {1}, {7}, {7}, {7}]
    t = table(priority, classes=classes)
    plain = select(t, SelectionPolicy(max_items=4))
    assert keys(plain.items) == [0, 1, 2, 3]
    quota = select(t, SelectionPolicy(max_items=4, class_quota={7: 2}))
    assert keys(quota.items) == [0, 1, 5, 6]  # the best two of class 7 and the best two others


def test_quotas_take_turns_when_the_budget_is_tight() -> None:
    priority = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    classes = [{1}, {1}, {1}, {2}, {2}, {2}]
    chosen = select(
        table(priority, classes=classes), SelectionPolicy(max_items=2, class_quota={1: 3, 2: 3})
    )
    assert keys(chosen.items) == [0, 3]  # one each, not three of class 1


def test_an_item_counts_towards_every_class_it_contains() -> None:
    priority = [0.9, 0.2, 0.1]
    classes = [{1, 2}, {2}, {1}]
    chosen = select(
        table(priority, classes=classes), SelectionPolicy(max_items=1, class_quota={1: 1, 2: 1})
    )
    assert keys(chosen.items) == [0]


def test_quota_candidates_beyond_the_diversity_pool_are_found() -> None:
    priority = list(np.linspace(0.9, 0.5, 50)) + [0.01]
    classes = [{1}] * 50 + [{7}]
    rng = np.random.default_rng(0)
    t = table(priority, classes=classes, embeddings=rng.normal(size=(51, 3)))
    chosen = select(t, SelectionPolicy(max_items=3, class_quota={7: 1}, diversity_pool=10))
    assert 50 in keys(chosen.items)
    assert all(k < 10 or k == 50 for k in keys(chosen.items))  # the rest from the pool


def test_duplicates_keep_the_highest_priority_copy() -> None:
    hashes = ["same", "other", "same", None]
    chosen = select(table([0.3, 0.2, 0.9, 0.1], hashes=hashes), SelectionPolicy(max_items=4))
    assert keys(chosen.items) == [2, 1, 3]
    assert chosen.n_duplicates == 1


def test_near_duplicate_embeddings_are_dropped() -> None:
    embeddings = np.array([[0.0, 0.0], [0.01, 0.0], [3.0, 0.0]])
    t = table([0.9, 0.8, 0.1], embeddings=embeddings)
    chosen = select(t, SelectionPolicy(max_items=3, duplicate_distance=0.1))
    assert keys(chosen.items) == [0, 2] and chosen.n_duplicates == 1
    assert len(select(t, SelectionPolicy(max_items=3)).items) == 3


def test_diversity_spreads_the_choice_over_clusters() -> None:
    rng = np.random.default_rng(1)
    # Cluster A holds the 10 highest priorities; B and C are lower.
    embeddings = np.vstack([rng.normal(c, 0.05, (10, 2)) for c in (0.0, 5.0, 10.0)])
    priority = (
        list(np.linspace(0.9, 0.8, 10))
        + list(np.linspace(0.5, 0.4, 10))
        + list(np.linspace(0.3, 0.2, 10))
    )
    t = table(priority, embeddings=embeddings)
    chosen = select(t, SelectionPolicy(max_items=3, diversity_pool=30))
    assert sorted(k // 10 for k in keys(chosen.items)) == [0, 1, 2]
    assert keys(chosen.items)[0] == 0  # the first centre is the top priority
    without = select(table(priority), SelectionPolicy(max_items=3))
    assert keys(without.items) == [0, 1, 2]


def test_the_default_pool_keeps_diversity_among_the_top_priorities() -> None:
    rng = np.random.default_rng(1)
    embeddings = np.vstack([rng.normal(c, 0.05, (10, 2)) for c in (0.0, 5.0, 10.0)])
    priority = (
        list(np.linspace(0.9, 0.8, 10))
        + list(np.linspace(0.5, 0.4, 10))
        + list(np.linspace(0.3, 0.2, 10))
    )
    # Pool = 4 x 3 = the 12 highest priorities: ten of cluster A and two of cluster B, so
    # the low-priority cluster C is never chosen for its distance alone.
    chosen = select(table(priority, embeddings=embeddings), SelectionPolicy(max_items=3))
    assert SelectionPolicy(max_items=3).pool_size == 12
    assert all(k < 12 for k in keys(chosen.items))
    assert {k // 10 for k in keys(chosen.items)} == {0, 1}


def test_items_carry_their_signals_without_nan_and_their_reason() -> None:
    signals = {"uncertainty_max": [0.2, NAN], "disagreement": [0.9, NAN], "drift": [NAN, 1.0]}
    chosen = select(table([0.0, 0.0], signals=signals), SelectionPolicy(max_items=2))
    by_key = {item.key - 1000: item for item in chosen.items}
    assert dict(by_key[0].signals) == {"uncertainty_max": 0.2, "disagreement": 0.9}
    assert by_key[0].reason == "disagreement"
    assert dict(by_key[1].signals) == {"drift": 1.0} and by_key[1].reason == "drift"
    # Missing signals renormalise: drift alone gives 1.0, ahead of the other.
    assert by_key[1].priority == 1.0 and keys(chosen.items) == [1, 0]


def test_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    n = 300
    t = table(
        list(rng.random(n)),
        embeddings=rng.normal(size=(n, 5)),
        hashes=[f"h{i % 250}" for i in range(n)],
        classes=[{int(c)} for c in rng.integers(0, 6, n)],
        n_instances=list(rng.integers(0, 6, n)),
    )
    policy = SelectionPolicy(
        max_items=40,
        max_instances=120,
        class_quota={5: 4},
        diversity_pool=100,
        duplicate_distance=0.5,
        seed=3,
    )
    first, again = select(t, policy), select(t, policy)
    assert first == again
    assert first.n_instances <= 120 and len(first.items) <= 40
    priorities = [item.priority for item in first.items]
    assert priorities == sorted(priorities, reverse=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keys": np.array([1, 1])}, "keys must be distinct; 1 repeats"),
        ({"embeddings": np.zeros((3, 2))}, "embeddings has 3 rows, expected 2"),
        ({"image_hashes": ["a"]}, "image_hashes has 1 values, expected 2"),
        ({"classes": [frozenset()]}, "classes has 1 values, expected 2"),
        (
            {"n_instances": np.array([1, -2])},
            "n_instances must be non-negative integers; row 1 is -2",
        ),
        ({"signals": {"novelty": np.zeros(2)}}, "unknown signal name.*'novelty'"),
        ({"signals": {"drift": np.array([0.5, 2.0])}}, r"drift must lie in \[0, 1\]; row 1 is 2.0"),
    ],
)
def test_malformed_tables_are_named(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "keys": np.array([1, 2]),
        "signals": {"drift": np.array([0.0, 1.0])},
        "embeddings": None,
        "image_hashes": [None, None],
        "classes": [frozenset(), frozenset()],
        "n_instances": np.array([1, 1]),
    }
    with pytest.raises(InvalidSignalError, match=message):
        CandidateTable(**{**fields, **change})  # type: ignore[arg-type]


def test_an_empty_table_selects_nothing() -> None:
    empty = CandidateTable(
        keys=np.zeros(0, dtype=np.int64),
        signals={},
        embeddings=np.zeros((0, 4)),
        image_hashes=[],
        classes=[],
        n_instances=np.zeros(0, dtype=np.int64),
    )
    chosen = select(empty, SelectionPolicy(max_items=5, class_quota={1: 2}))
    assert chosen.items == () and chosen.n_candidates == 0
