"""AuthService rules over a real SQLite store in a temporary folder."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.auth import LOCAL_PRINCIPAL, AuthService
from modelyard.core.clock import FakeClock
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from modelyard.credentials import read_credentials
from modelyard.store import open_store


@pytest.fixture
def service(tmp_path: Path, fake_clock: FakeClock) -> Iterator[AuthService]:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}", fake_clock)
    store.migrate()
    yield AuthService(store.auth, fake_clock)
    store.close()


def test_bootstrap_once_writes_private_credentials(service: AuthService, tmp_path: Path) -> None:
    creds = tmp_path / "home" / "credentials"
    issued = service.bootstrap(creds, "http://127.0.0.1:5005")
    assert issued is not None
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert read_credentials(creds) == {
        "tracking_uri": "http://127.0.0.1:5005",
        "token": issued.plaintext,
    }
    assert service.bootstrap(creds, "http://127.0.0.1:5005") is None
    principal = service.authenticate(issued.plaintext)
    assert principal.is_platform_admin
    assert principal.role_in("default") is Role.ADMIN


def test_token_expiry_uses_the_injected_clock(service: AuthService, fake_clock: FakeClock) -> None:
    service.bootstrap(_tmp_creds(), "http://x")
    issued = service.create_token(LOCAL_PRINCIPAL, name="t", user="admin", expires_in_s=10)
    service.authenticate(issued.plaintext)
    fake_clock.advance(10)
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate(issued.plaintext)


def _tmp_creds() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp()) / "credentials"


def test_tampered_token_is_rejected(service: AuthService) -> None:
    issued = service.bootstrap(_tmp_creds(), "http://x")
    assert issued is not None
    forged = issued.plaintext[:-1] + ("A" if issued.plaintext[-1] != "A" else "B")
    with pytest.raises(Unauthenticated, match="unknown"):
        service.authenticate(forged)


def test_project_admin_manages_members_but_not_platform(service: AuthService) -> None:
    service.bootstrap(_tmp_creds(), "http://x")
    service.create_project(LOCAL_PRINCIPAL, "team")
    service.add_member(LOCAL_PRINCIPAL, "team", "lead", Role.ADMIN)
    lead_token = service.create_token(LOCAL_PRINCIPAL, name="lead", user="lead")
    lead = service.authenticate(lead_token.plaintext)
    service.add_member(lead, "team", "dev", Role.EDITOR)
    assert [m.user for m in service.list_members(lead, "team")] == ["dev", "lead"]
    with pytest.raises(PermissionDenied):
        service.create_project(lead, "other")
    with pytest.raises(PermissionDenied):
        service.add_member(lead, "default", "dev", Role.VIEWER)
    with pytest.raises(NotFound):
        service.add_member(lead, "ghost", "dev", Role.VIEWER)
    # a project admin may issue scoped tokens for members of that project
    issued = service.create_token(lead, name="dev-ci", user="dev", project="team", role=Role.EDITOR)
    assert issued.token.user == "dev"
    with pytest.raises(PermissionDenied):
        service.create_token(lead, name="x", user="dev")


def test_audit_listing_limits(service: AuthService) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        service.list_audit(LOCAL_PRINCIPAL, limit=0)
