"""Validation of user-chosen names: the message always names the field and the rule."""

from __future__ import annotations

import re

from modelyard.core.errors import InvalidInput

_PROJECT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_LABEL_RE = re.compile(r"^[\w .:@+-]{1,128}$")


def validate_project_name(name: str) -> str:
    """Project names are DNS labels (they become namespaces and URL parts)."""
    if not _PROJECT_RE.match(name):
        raise InvalidInput(
            f"project name {name!r} is invalid: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_user_name(name: str) -> str:
    if not _USER_RE.match(name):
        raise InvalidInput(
            f"user name {name!r} is invalid: use up to 128 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return name


def validate_label(field: str, value: str) -> str:
    """Free-form short labels such as token names."""
    if not _LABEL_RE.match(value):
        raise InvalidInput(
            f"{field} {value!r} is invalid: use 1-128 letters, digits, spaces and . : @ + - _"
        )
    return value
