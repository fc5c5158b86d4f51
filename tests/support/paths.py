"""Where the checkout and the real data beside it are, and the ``borrat`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
"""The checkout's root (README.md, dashboards/, the packages)."""

SHARED_DATA = REPO.parent / "shared" / "data"
BORRAT = SHARED_DATA / "borrat"
"""The real Borrat dataset, ``../shared/data/borrat`` beside the checkout (may be absent)."""


def skip_without_borrat(needed: Path) -> None:
    """Skip the test unless ``needed`` (a file of the Borrat dataset) exists."""
    if not needed.exists():
        pytest.skip(f"real data not found at {BORRAT} (../shared/data/borrat beside the checkout)")


@pytest.fixture
def borrat() -> Path:
    """The real Borrat dataset beside the checkout, or a skip."""
    skip_without_borrat(BORRAT / "train" / "_annotations.coco.json")
    return BORRAT
