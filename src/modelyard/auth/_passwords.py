"""Passwords for the web UI: argon2id (RFC 9106) hashes, and browser session secrets.

Programs keep using API tokens; a password only ever opens a browser session. The hash is
stored in PHC string form (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), so the cost
parameters travel with each hash and can be raised later (``needs_rehash``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from modelyard.core.errors import InvalidInput

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
SESSION_PREFIX = "mys_"

# argon2-cffi's RFC 9106 "low memory" profile: 64 MiB, 3 passes, 4 lanes.
_HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, type=Type.ID)


@cache
def _dummy_hash() -> str:
    """Verified against when the user has no password, so that a login for an unknown
    name costs the same time as one with a wrong password (made on first use, not at
    import: one argon2 hash is tens of milliseconds)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def validate_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters,"
            f" got {len(password)}"
        )
    if password.strip() != password or not password.isprintable():
        raise InvalidInput("a password cannot start or end with spaces or hold control characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(validate_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; always spends one argon2 verification."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class NewSession:
    cookie: str  # what the browser holds
    session_id: str  # what the store holds: sha256 of the cookie
    csrf_token: str


def new_session() -> NewSession:
    cookie = SESSION_PREFIX + secrets.token_urlsafe(32)
    return NewSession(cookie, session_id_of(cookie), secrets.token_urlsafe(32))


def session_id_of(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()
