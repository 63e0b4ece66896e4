"""Web UI passwords (argon2id) and browser sessions, over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.auth import LOCAL_PRINCIPAL, AuthService
from modelyard.auth._passwords import (
    hash_password,
    session_id_of,
    validate_password,
    verify_password,
)
from modelyard.core.clock import FakeClock
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from modelyard.store import MetadataStore, open_store

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path, fake_clock: FakeClock) -> Iterator[MetadataStore]:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}", fake_clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def service(store: MetadataStore, fake_clock: FakeClock, tmp_path: Path) -> AuthService:
    service = AuthService(store.auth, fake_clock)
    service.bootstrap(tmp_path / "credentials", "http://127.0.0.1:5005")
    service.add_member(LOCAL_PRINCIPAL, "default", "vera", Role.VIEWER)
    return service


def test_hash_is_argon2id_and_salted() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert first != second
    assert verify_password(first, PASSWORD)
    assert not verify_password(first, PASSWORD + "x")
    assert not verify_password(None, PASSWORD)
    assert not verify_password("not a hash", PASSWORD)


@pytest.mark.parametrize("bad", ["short", " leading space", "trailing ", "tab\tinside", "x" * 1025])
def test_weak_or_odd_passwords_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_password(bad)


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_verify_never_raises_on_any_input(guess: str) -> None:
    assert verify_password("$argon2id$v=19$m=65536,t=3,p=4$garbage", guess) is False


def test_the_store_holds_hashes_not_passwords_or_cookies(
    service: AuthService, store: MetadataStore
) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    stored = store.auth.password_hash("vera")
    assert stored is not None
    assert PASSWORD not in stored
    login = service.login("vera", PASSWORD)
    assert store.auth.find_browser_session(login.cookie) is None
    assert store.auth.find_browser_session(session_id_of(login.cookie)) is not None


def test_login_opens_a_session_with_the_users_roles(service: AuthService) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    login = service.login("vera", PASSWORD)
    session = service.browser_session(login.cookie)
    assert session.principal.user == "vera"
    assert session.principal.role_in("default") is Role.VIEWER
    assert session.principal.token_id is None
    assert session.csrf_token == login.csrf_token
    service.logout(login.cookie)
    with pytest.raises(Unauthenticated):
        service.browser_session(login.cookie)


def test_wrong_password_unknown_user_and_no_password_read_the_same(
    service: AuthService,
) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    messages = set()
    for user, password in (("vera", "wrong password"), ("nobody", PASSWORD), ("admin", PASSWORD)):
        with pytest.raises(Unauthenticated) as caught:
            service.login(user, password)
        messages.add(caught.value.message)
    assert messages == {"wrong user name or password"}


def test_sessions_expire(service: AuthService, fake_clock: FakeClock) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    login = service.login("vera", PASSWORD)
    fake_clock.advance(12 * 3600 + 1)
    with pytest.raises(Unauthenticated, match="sign in again"):
        service.browser_session(login.cookie)


def test_a_new_password_ends_the_users_sessions(service: AuthService) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    login = service.login("vera", PASSWORD)
    vera = service.browser_session(login.cookie).principal
    service.set_password(vera, "vera", PASSWORD + "!")
    with pytest.raises(Unauthenticated):
        service.browser_session(login.cookie)
    service.login("vera", PASSWORD + "!")


def test_only_a_platform_admin_sets_someone_elses_password(service: AuthService) -> None:
    service.set_password(LOCAL_PRINCIPAL, "vera", PASSWORD)
    vera = service.browser_session(service.login("vera", PASSWORD).cookie).principal
    with pytest.raises(PermissionDenied):
        service.set_password(vera, "admin", PASSWORD)
    with pytest.raises(NotFound):
        service.set_password(LOCAL_PRINCIPAL, "ghost", PASSWORD)
