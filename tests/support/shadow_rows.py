"""The stored shadow rows of a database, comparable across runs (no row ids, sorted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.storage.schema import ShadowClassScore, ShadowScore


def shadow_rows(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """Every shadow score and per-class row with what it belongs to, sorted."""
    with sessions() as s:
        scores = s.execute(
            select(
                ShadowScore.sample_id,
                ShadowScore.reference_model,
                ShadowScore.n_production,
                ShadowScore.n_reference,
                ShadowScore.n_matched,
                ShadowScore.mean_iou,
                ShadowScore.agreement,
            )
        ).all()
        classes = s.execute(
            select(
                ShadowScore.sample_id,
                ShadowClassScore.category_id,
                ShadowClassScore.matched,
                ShadowClassScore.production_only,
                ShadowClassScore.reference_only,
                ShadowClassScore.class_disagreements,
                ShadowClassScore.ious,
            ).join(ShadowScore)
        ).all()
    return sorted(tuple(r) for r in scores) + sorted((*r[:-1], tuple(r[-1])) for r in classes)
