"""budgets and quotas: monthly budgets with their history and notification outbox,
project quotas

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:02:11.402317
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("monthly_amount", sa.Double(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("thresholds_json", sa.Text(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("webhook_secret", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("last_json", sa.Text(), nullable=False),
        sa.Column("evaluated_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_budgets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("project_id", name=op.f("uq_budgets_project_id")),
    )
    op.create_table(
        "budget_events",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_budget_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_events")),
    )
    with op.batch_alter_table("budget_events", schema=None) as batch_op:
        batch_op.create_index("ix_budget_events_project_id", ["project_id", "id"], unique=False)

    op.create_table(
        "budget_notifications",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("budget_id", _BIGINT, nullable=False),
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_notifications_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_notifications")),
        sa.UniqueConstraint(
            "notification_id", "target", name=op.f("uq_budget_notifications_notification_id")
        ),
    )
    with op.batch_alter_table("budget_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_budget_notifications_status", ["status"], unique=False)

    op.create_table(
        "project_quotas",
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("max_replicas", sa.Integer(), nullable=True),
        sa.Column("max_cpu", sa.Double(), nullable=True),
        sa.Column("max_memory_gb", sa.Double(), nullable=True),
        sa.Column("max_gpu", sa.Double(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_quotas_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_quotas")),
    )


def downgrade() -> None:
    op.drop_table("project_quotas")
    with op.batch_alter_table("budget_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_notifications_status")

    op.drop_table("budget_notifications")
    with op.batch_alter_table("budget_events", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_events_project_id")

    op.drop_table("budget_events")
    op.drop_table("budgets")
