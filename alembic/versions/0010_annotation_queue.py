"""annotation queue: items, export batches, labelled production samples

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_export_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_runs.id"],
            name=op.f("fk_queue_export_batches_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_export_batches")),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "exported",
                "labeled",
                "skipped",
                "expired",
                name="queue_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("n_instances", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fill_run_id", sa.Integer(), nullable=True),
        sa.Column("export_batch_id", sa.Integer(), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("labeled_by", sa.String(length=256), nullable=True),
        sa.Column("review_reason", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["export_batch_id"],
            ["queue_export_batches.id"],
            name=op.f("fk_queue_items_export_batch_id_queue_export_batches"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["fill_run_id"],
            ["job_runs.id"],
            name=op.f("fk_queue_items_fill_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_queue_items_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
        sa.UniqueConstraint("sample_id", name="uq_queue_items_sample_id"),
    )
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_items_export_batch_id"), ["export_batch_id"], unique=False
        )
        batch_op.create_index("ix_queue_items_state_priority", ["state", "priority"], unique=False)

    with op.batch_alter_table("dataset_images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sample_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_dataset_images_sample_id"), ["sample_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dataset_images_sample_id_samples"),
            "samples",
            ["sample_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_images", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dataset_images_sample_id_samples"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_dataset_images_sample_id"))
        batch_op.drop_column("sample_id")

    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_items_state_priority")
        batch_op.drop_index(batch_op.f("ix_queue_items_export_batch_id"))

    op.drop_table("queue_items")
    op.drop_table("queue_export_batches")
