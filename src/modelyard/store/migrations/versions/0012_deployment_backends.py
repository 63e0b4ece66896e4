"""deployment backends: where a deployment's replicas run (local, kubernetes, ray)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 03:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("backend_json", sa.Text(), nullable=False, server_default='{"kind": "local"}')
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("backend_json")
