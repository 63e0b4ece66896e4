"""The SQL metadata store: one engine, one session factory, a repository per capability."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from modelyard.core.clock import Clock, SystemClock
from modelyard.core.errors import AlreadyExists, Unavailable
from modelyard.store._engine import READ_ONLY_OPTION, create_sql_engine
from modelyard.store._migrate import current_revision, head_revision, migrate


class SqlStore:
    """Metadata store over SQLAlchemy; SQLite or PostgreSQL.

    Thread-safe: each call opens its own session; one call is one transaction, so a
    failure never leaves a half-written record.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def from_uri(cls, uri: str, clock: Clock | None = None) -> SqlStore:
        return cls(create_sql_engine(uri), clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Apply pending migrations (the server calls this on start)."""
        migrate(self.engine)

    def is_current(self) -> bool:
        """Whether the schema is at the newest migration."""
        return current_revision(self.engine) == head_revision()

    def ping(self) -> None:
        """Raises Unavailable if the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise Unavailable(f"metadata store unreachable: {exc.orig}") from exc

    @contextmanager
    def transaction(self, conflict_message: str = "already exists") -> Iterator[Session]:
        """A session committed on success, rolled back on any error.

        A unique-constraint violation becomes AlreadyExists(conflict_message).
        """
        with self._session(self._sessions, commit=True, conflict_message=conflict_message) as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it never takes the write lock."""
        with self._session(self._read_sessions, commit=False, conflict_message="") as s:
            yield s

    @staticmethod
    @contextmanager
    def _session(
        factory: sessionmaker[Session], *, commit: bool, conflict_message: str
    ) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            if commit:
                session.commit()
            else:
                session.rollback()
        except SqlIntegrityError as exc:
            session.rollback()
            raise AlreadyExists(conflict_message) from exc
        except OperationalError as exc:
            session.rollback()
            raise Unavailable(f"metadata store error: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()
