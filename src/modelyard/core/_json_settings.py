"""A mixin for frozen settings dataclasses kept as JSON in the store."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from typing import Any, ClassVar, Self

from modelyard.core.errors import InvalidInput


def check(cond: bool, message: str) -> None:
    """Raise ``InvalidInput(message)`` unless ``cond`` (settings validation)."""
    if not cond:
        raise InvalidInput(message)


class JsonSettings:
    """``to_json``, ``from_dict`` (unknown keys ignored) and a validated ``merged``.

    Subclasses are frozen dataclasses; ``settings_kind`` names them in error messages.
    """

    settings_kind: ClassVar[str] = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dict, ignoring unknown keys (rows written by newer versions)."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})

    def merged(self, changes: dict[str, Any]) -> Self:
        """A copy with ``changes`` (``None`` values ignored), validated.

        Raises:
            InvalidInput: an unknown setting or an invalid value or combination.
        """
        known = {f.name for f in fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidInput(f"unknown {self.settings_kind} setting(s): {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[type-var]
