"""Alembic environment: always run with a connection handed in by modelyard."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from modelyard.store.schema import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelyard migrations run through modelyard.store.migrate()")
_run(connection)
