"""Dataset names and references: ``credit``, ``credit@v2``, ``credit@latest``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.core.errors import InvalidInput

LATEST = "latest"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_VERSION_RE = re.compile(r"^v?([1-9][0-9]{0,9})$")


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name.

    A name is 1-128 letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit; ``/`` and ``@`` are never allowed (they separate paths and versions).

    Raises:
        InvalidInput: anything else; the message names the offending character.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        bad = next((c for c in ("/", "@") if isinstance(name, str) and c in name), None)
        reason = f"it contains {bad!r}" if bad else "use 1-128 letters, digits, _ . -"
        raise InvalidInput(
            f"invalid dataset name {name!r}: {reason} (starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class DatasetRef:
    """A parsed reference; ``version`` None means the latest version."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{LATEST if self.version is None else f'v{self.version}'}"


def parse_version(text: str) -> int | None:
    """``v3``/``3`` → 3; ``latest`` → None.

    Raises:
        InvalidInput: anything else.
    """
    if text == LATEST:
        return None
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"invalid dataset version {text!r}: expected v<N> (like v2), <N> or 'latest'"
        )
    return int(match.group(1))


def parse_ref(text: str) -> DatasetRef:
    """Parse ``name``, ``name@vN``, ``name@N`` or ``name@latest``.

    Raises:
        InvalidInput: an invalid name or version; the message names the reference.
    """
    if not isinstance(text, str) or not text:
        raise InvalidInput("invalid dataset reference '': expected name@vN or name@latest")
    name, sep, version = text.partition("@")
    if sep and "@" in version:
        raise InvalidInput(f"invalid dataset reference {text!r}: more than one '@'")
    validate_dataset_name(name)
    return DatasetRef(name, parse_version(version) if sep else None)
