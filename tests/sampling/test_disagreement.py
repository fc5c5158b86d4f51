from __future__ import annotations

import numpy as np
import pytest

from sampling import InvalidSignalError, image_disagreement

NAN = float("nan")


def _one(agreement: float, po: int, ro: int, cd: int, n_p: int, n_r: int) -> float:
    return float(image_disagreement([agreement], [po], [ro], [cd], [n_p], [n_r])[0])


def test_a_perfect_shadow_row_scores_zero() -> None:
    assert _one(1.0, 0, 0, 0, 4, 4) == 0.0
    assert _one(1.0, 0, 0, 0, 0, 0) == 0.0  # both models see nothing: they agree


def test_nothing_matched_scores_one() -> None:
    assert _one(0.0, 3, 2, 0, 3, 2) == 1.0


def test_hand_computed_mixture() -> None:
    # matched = 4 - 1 = 3 = 5 - 2; share = (1 + 2 + 1) / (1 + 2 + 3) = 2/3
    assert _one(0.6, 1, 2, 1, 4, 5) == pytest.approx(0.5 * 0.4 + 0.5 * 2 / 3)
    # Masks that overlap badly but no count disagreement: only 1 - agreement counts.
    assert _one(0.5, 0, 0, 0, 2, 2) == pytest.approx(0.25)


def test_spurious_and_missed_weigh_the_same() -> None:
    spurious = _one(0.75, 1, 0, 0, 4, 3)
    missed = _one(0.75, 0, 1, 0, 3, 4)
    assert spurious == missed > _one(0.75, 0, 0, 0, 3, 3)


def test_no_shadow_row_is_no_signal() -> None:
    out = image_disagreement([NAN, 1.0], [9, 0], [0, 0], [0, 0], [0, 1], [0, 1])
    assert np.isnan(out[0]) and out[1] == 0.0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((0.5, 3, 0, 0, 2, 0), "production_only exceeds n_production"),
        ((0.5, 0, 0, 0, 2, 3), r"n_production - production_only != n_reference - reference_only"),
        ((0.5, 1, 1, 2, 2, 2), "class_disagreements exceed the matched pairs"),
    ],
)
def test_inconsistent_rows_are_named(
    row: tuple[float, int, int, int, int, int], message: str
) -> None:
    with pytest.raises(InvalidSignalError, match=f"shadow row 0 is inconsistent: {message}"):
        _one(*row)
