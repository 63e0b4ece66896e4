"""Identifiers: random, URL-safe, sortable enough to read in logs."""

from __future__ import annotations

import secrets


def new_id(n_bytes: int = 16) -> str:
    """A random hex id (32 characters by default)."""
    return secrets.token_hex(n_bytes)
