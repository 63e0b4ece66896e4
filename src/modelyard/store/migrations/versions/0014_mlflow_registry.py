"""mlflow registry: model version stages and last-update times

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("current_stage", sa.String(length=20), nullable=False, server_default="None")
        )
        batch_op.add_column(sa.Column("updated_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("updated_at_ms")
        batch_op.drop_column("current_stage")
