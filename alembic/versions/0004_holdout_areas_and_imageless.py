"""holdout: stated COCO areas; images imported without pixels; 64-bit COCO ids

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ground_truth_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coco_area", sa.Float(), nullable=True))
        # COCO's own crowd annotations have ids above 2**31 (e.g. 900100259690).
        batch_op.alter_column(
            "source_annotation_id", existing_type=sa.Integer(), type_=sa.BigInteger()
        )
    with op.batch_alter_table("dataset_images", schema=None) as batch_op:
        batch_op.alter_column("image_uri", existing_type=sa.String(length=2048), nullable=True)
        batch_op.alter_column("image_sha256", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("source_image_id", existing_type=sa.Integer(), type_=sa.BigInteger())


def downgrade() -> None:
    with op.batch_alter_table("dataset_images", schema=None) as batch_op:
        batch_op.alter_column("source_image_id", existing_type=sa.BigInteger(), type_=sa.Integer())
        batch_op.alter_column("image_sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("image_uri", existing_type=sa.String(length=2048), nullable=False)
    with op.batch_alter_table("ground_truth_instances", schema=None) as batch_op:
        batch_op.alter_column(
            "source_annotation_id", existing_type=sa.BigInteger(), type_=sa.Integer()
        )
        batch_op.drop_column("coco_area")
