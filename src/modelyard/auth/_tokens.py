"""API token format: ``myt_<id>_<secret>``; only the sha256 of the whole token is stored.

The secret carries 256 bits of randomness, so a plain (unsalted) sha256 is as strong as a
slow password hash here and keeps every request's check cheap; the id lets the server find
the row without scanning.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from modelyard.core.errors import Unauthenticated

PREFIX = "myt"
_TOKEN_RE = re.compile(r"^myt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewToken:
    token_id: str
    plaintext: str
    sha256: str


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_token() -> NewToken:
    token_id = secrets.token_hex(8)
    plaintext = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    return NewToken(token_id, plaintext, hash_token(plaintext))


def parse_token(plaintext: str) -> str:
    """The token id of a well-formed token.

    Raises:
        Unauthenticated: the string is not a modelyard token.
    """
    match = _TOKEN_RE.match(plaintext.strip())
    if match is None:
        raise Unauthenticated("malformed API token")
    return match.group(1)


def token_matches(plaintext: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(hash_token(plaintext.strip()), stored_sha256)
