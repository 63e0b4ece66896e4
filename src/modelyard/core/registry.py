"""One small typed registry that picks a backend by URI scheme.

Registration is explicit (a factory is added by whoever builds the registry), so nothing
is registered at import time and an unknown scheme fails with a message listing the
known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from modelyard.core.errors import InvalidInput

T = TypeVar("T")


class SchemeRegistry(Generic[T]):
    """Maps URI schemes (``file``, ``s3``, ``sqlite`` …) to factories of one kind."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._factories: dict[str, Callable[[str], T]] = {}

    def register(self, scheme: str, factory: Callable[[str], T]) -> None:
        self._factories[scheme] = factory

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def create(self, uri: str) -> T:
        """Build the backend for ``uri``.

        Raises:
            InvalidInput: the scheme is not registered.
        """
        scheme = urlsplit(uri).scheme.split("+", 1)[0]
        factory = self._factories.get(scheme)
        if factory is None:
            known = ", ".join(f"{s}://" for s in self.schemes)
            raise InvalidInput(f"unsupported {self._kind} URI {uri!r}: use one of {known}")
        return factory(uri)
