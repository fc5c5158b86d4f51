"""canary results: per-signal verdicts of a candidate model version against the baseline

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canary_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("baseline", sa.String(length=128), nullable=False),
        sa.Column("candidate", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signal", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("significant", sa.Integer(), nullable=False),
        sa.Column("min_p_value", sa.Float(), nullable=True),
        sa.Column("baseline_mean", sa.Float(), nullable=True),
        sa.Column("candidate_mean", sa.Float(), nullable=True),
        sa.Column("n_baseline", sa.Integer(), nullable=False),
        sa.Column("n_candidate", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_runs.id"],
            name=op.f("fk_canary_results_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_results")),
        sa.UniqueConstraint(
            "baseline", "candidate", "window_end", "signal", name="uq_canary_results_signal"
        ),
    )
    with op.batch_alter_table("canary_results", schema=None) as batch_op:
        batch_op.create_index("ix_canary_results_window_end", ["window_end"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("canary_results", schema=None) as batch_op:
        batch_op.drop_index("ix_canary_results_window_end")
    op.drop_table("canary_results")
