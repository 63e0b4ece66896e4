"""The one error hierarchy of modelyard.

Every layer raises these; the server maps each ``error_code`` to an HTTP status in one
place (``modelyard.server.errors``) and the client maps the code back to the same class,
so a caller sees the exception the server raised.
"""

from __future__ import annotations

from typing import ClassVar


class ModelyardError(Exception):
    """Base class. ``error_code`` is stable and travels over the wire."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ModelyardError):
    """The caller sent something malformed or out of range; the message names the field."""

    error_code = "INVALID_INPUT"


class NotFound(ModelyardError):
    """The named resource does not exist (or the caller may not know that it does)."""

    error_code = "NOT_FOUND"


class AlreadyExists(ModelyardError):
    """A resource with that unique name already exists."""

    error_code = "ALREADY_EXISTS"


class Conflict(ModelyardError):
    """The request contradicts the current state (e.g. re-setting an immutable value)."""

    error_code = "CONFLICT"


class Unauthenticated(ModelyardError):
    """No valid credentials were presented."""

    error_code = "UNAUTHENTICATED"


class PermissionDenied(ModelyardError):
    """Credentials are valid but lack the role the operation needs."""

    error_code = "PERMISSION_DENIED"


class QuotaExceeded(ModelyardError):
    """A quota or budget forbids the operation."""

    error_code = "QUOTA_EXCEEDED"


class IntegrityError(ModelyardError):
    """Stored data failed verification (e.g. a blob whose digest does not match)."""

    error_code = "INTEGRITY_ERROR"


class Unavailable(ModelyardError):
    """A backend the operation needs cannot be reached right now; retrying may help."""

    error_code = "UNAVAILABLE"


ERRORS_BY_CODE: dict[str, type[ModelyardError]] = {
    cls.error_code: cls
    for cls in (
        ModelyardError,
        InvalidInput,
        NotFound,
        AlreadyExists,
        Conflict,
        Unauthenticated,
        PermissionDenied,
        QuotaExceeded,
        IntegrityError,
        Unavailable,
    )
}


def error_from_code(error_code: str, message: str) -> ModelyardError:
    """Rebuild the exception a server raised from its wire form."""
    return ERRORS_BY_CODE.get(error_code, ModelyardError)(message)
