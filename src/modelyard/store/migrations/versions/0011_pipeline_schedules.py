"""pipeline schedules: cron schedules of pipelines run by the server, and their fires

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("executor", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("armed_at", sa.Double(), nullable=False),
        sa.Column("last_fire_at", sa.Double(), nullable=True),
        sa.Column("next_fire_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pipeline_schedules_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_schedules")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_pipeline_schedules_project_id")),
    )
    op.create_table(
        "pipeline_schedule_fires",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("tick_at", sa.Double(), nullable=True),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("fired_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["pipeline_schedules.id"],
            name=op.f("fk_pipeline_schedule_fires_schedule_id_pipeline_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_schedule_fires")),
    )
    with op.batch_alter_table("pipeline_schedule_fires", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pipeline_schedule_fires_schedule_id", ["schedule_id", "id"], unique=False
        )
        batch_op.create_index("ix_pipeline_schedule_fires_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pipeline_schedule_fires", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_schedule_fires_state")
        batch_op.drop_index("ix_pipeline_schedule_fires_schedule_id")
    op.drop_table("pipeline_schedule_fires")
    op.drop_table("pipeline_schedules")
