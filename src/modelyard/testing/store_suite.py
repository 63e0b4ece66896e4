"""The conformance suite every metadata store backend must pass.

Subclass ``MetadataStoreConformance`` in a test module and provide a ``metadata_store``
fixture returning a fresh, migrated, empty store built with the ``fake_clock`` fixture's
clock (see tests/integration/test_store_conformance.py for SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import Role
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.store import MetadataStore
from modelyard.store.schema import ProjectRow


class MetadataStoreConformance:
    # --- schema -------------------------------------------------------------------------

    def test_migrations_are_idempotent_and_current(self, metadata_store: MetadataStore) -> None:
        metadata_store.migrate()
        metadata_store.migrate()
        assert metadata_store.sql.is_current()
        metadata_store.sql.ping()

    def test_migrations_build_exactly_the_declared_tables(
        self, metadata_store: MetadataStore
    ) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from modelyard.store.schema import Base

        with metadata_store.sql.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []

    # --- projects -----------------------------------------------------------------------

    def test_project_round_trip(self, metadata_store: MetadataStore, fake_clock: FakeClock) -> None:
        created = metadata_store.auth.create_project("fraud-team", "détection de fraude ✓")
        assert created.created_at == fake_clock.now()
        assert metadata_store.auth.get_project("fraud-team") == created
        assert [p.name for p in metadata_store.auth.list_projects()] == ["fraud-team"]

    def test_duplicate_project_is_already_exists(self, metadata_store: MetadataStore) -> None:
        metadata_store.auth.create_project("a")
        with pytest.raises(AlreadyExists, match="project 'a' already exists"):
            metadata_store.auth.create_project("a")
        assert len(metadata_store.auth.list_projects()) == 1

    def test_missing_project_is_not_found(self, metadata_store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="project 'nope'"):
            metadata_store.auth.get_project("nope")

    def test_failed_transaction_writes_nothing(self, metadata_store: MetadataStore) -> None:
        def crash_mid_transaction() -> None:
            with metadata_store.sql.transaction() as session:
                session.add(ProjectRow(id="x" * 32, name="half", description="", created_at=0.0))
                session.flush()
                raise RuntimeError("crash mid-transaction")

        with pytest.raises(RuntimeError):
            crash_mid_transaction()
        assert metadata_store.auth.list_projects() == []

    def test_concurrent_creates_of_one_name_succeed_once(
        self, metadata_store: MetadataStore
    ) -> None:
        barrier = threading.Barrier(8)

        def create(_: int) -> str:
            barrier.wait()
            try:
                metadata_store.auth.create_project("contended")
                return "created"
            except AlreadyExists:
                return "exists"

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(create, range(8)))
        assert outcomes.count("created") == 1
        assert outcomes.count("exists") == 7

    def test_concurrent_creates_of_distinct_names_all_succeed(
        self, metadata_store: MetadataStore
    ) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: metadata_store.auth.create_project(f"p{i}"), range(32)))
        assert len(metadata_store.auth.list_projects()) == 32

    # --- users and memberships ----------------------------------------------------------

    def test_users_and_memberships(self, metadata_store: MetadataStore) -> None:
        repo = metadata_store.auth
        repo.create_project("a")
        repo.create_project("b")
        repo.create_user("alice")
        repo.create_user("root", is_admin=True)
        with pytest.raises(AlreadyExists):
            repo.create_user("alice")
        repo.set_membership("a", "alice", Role.VIEWER)
        repo.set_membership("a", "alice", Role.EDITOR)  # a change, not a second row
        repo.set_membership("b", "alice", Role.ADMIN)
        assert [(m.project, m.role) for m in repo.list_memberships(user="alice")] == [
            ("a", Role.EDITOR),
            ("b", Role.ADMIN),
        ]
        assert [m.user for m in repo.list_memberships(project="a")] == ["alice"]
        repo.remove_membership("a", "alice")
        assert [m.project for m in repo.list_memberships(user="alice")] == ["b"]
        assert repo.get_user("root").is_admin
        assert repo.find_user("nobody") is None
        with pytest.raises(NotFound, match="user 'ghost'"):
            repo.set_membership("a", "ghost", Role.VIEWER)

    # --- tokens -------------------------------------------------------------------------

    def test_token_lifecycle(self, metadata_store: MetadataStore, fake_clock: FakeClock) -> None:
        repo = metadata_store.auth
        repo.create_project("a")
        repo.create_user("alice")
        token = repo.create_token(
            token_id="0123456789abcdef",
            secret_sha256="f" * 64,
            name="ci",
            user="alice",
            project="a",
            role=Role.EDITOR,
            expires_at=fake_clock.now() + 60,
        )
        assert (token.user, token.project, token.role) == ("alice", "a", Role.EDITOR)
        assert token.is_active(fake_clock.now())
        assert not token.is_active(fake_clock.now() + 61)
        found = repo.find_token("0123456789abcdef")
        assert found == (token, "f" * 64)
        fake_clock.advance(5)
        repo.touch_token(token.id, fake_clock.now())
        revoked = repo.revoke_token(token.id)
        assert revoked.revoked_at == fake_clock.now()
        assert revoked.last_used_at == fake_clock.now()
        assert not revoked.is_active(fake_clock.now())
        assert [t.id for t in repo.list_tokens(user="alice")] == [token.id]
        assert repo.find_token("fedcba9876543210") is None
        with pytest.raises(NotFound):
            repo.revoke_token("fedcba9876543210")

    def test_token_for_unknown_user_is_not_found(self, metadata_store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            metadata_store.auth.create_token(
                token_id="0123456789abcdef",
                secret_sha256="0" * 64,
                name="x",
                user="ghost",
                project=None,
                role=None,
                expires_at=None,
            )
        assert metadata_store.auth.list_tokens() == []

    # --- audit --------------------------------------------------------------------------

    def test_audit_is_newest_first_and_filterable(
        self, metadata_store: MetadataStore, fake_clock: FakeClock
    ) -> None:
        repo = metadata_store.auth
        for i in range(5):
            fake_clock.advance(1)
            repo.append_audit(
                actor="alice" if i % 2 else "bob",
                token_id=None,
                action="project.create",
                project=f"p{i}",
                target=f"project:p{i}",
                outcome="ok",
                status_code=201,
            )
        records = repo.list_audit()
        assert [r.project for r in records] == ["p4", "p3", "p2", "p1", "p0"]
        assert [r.project for r in repo.list_audit(actor="alice")] == ["p3", "p1"]
        assert [r.project for r in repo.list_audit(limit=2)] == ["p4", "p3"]
        assert [r.project for r in repo.list_audit(since=records[1].timestamp)] == ["p4", "p3"]
        assert repo.list_audit(project="p2")[0].target == "project:p2"

    # --- artifact index -----------------------------------------------------------------

    def test_artifact_index(self, metadata_store: MetadataStore) -> None:
        index = metadata_store.artifacts
        index.put("ns", "plots/roc.png", "a" * 64, 10)
        index.put("ns", "plots/roc.png", "b" * 64, 12)  # replaces
        index.put("ns", "plots%/x", "c" * 64, 1)
        index.put("ns", "model.pkl", "c" * 64, 1)
        index.put("other", "plots/roc.png", "d" * 64, 3)
        assert index.get("ns", "plots/roc.png").digest == "b" * 64
        assert [e.path for e in index.list("ns")] == ["model.pkl", "plots%/x", "plots/roc.png"]
        assert [e.path for e in index.list("ns", "plots%")] == ["plots%/x"]
        assert [e.path for e in index.list("ns", "plots/")] == ["plots/roc.png"]
        index.delete("ns", "model.pkl")
        with pytest.raises(NotFound):
            index.get("ns", "model.pkl")
        with pytest.raises(NotFound):
            index.delete("ns", "model.pkl")
        assert index.referenced_digests() == {"b" * 64, "c" * 64, "d" * 64}
