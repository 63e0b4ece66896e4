from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from modelyard.server._errors import describe_validation_error


def test_messages_name_each_field() -> None:
    exc = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "name"), "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra"},
            {"type": "int_parsing", "loc": ("query", "limit"), "msg": "not an int"},
        ]
    )
    not_json, message = describe_validation_error(exc)
    assert not not_json
    assert message == (
        "field 'name' is required; unknown field 'colour'; field 'query.limit': not an int"
    )


def test_invalid_json_is_told_apart() -> None:
    exc = RequestValidationError(
        [{"type": "json_invalid", "loc": ("body", 9), "msg": "JSON", "ctx": {"error": "EOF"}}]
    )
    assert describe_validation_error(exc) == (True, "request body is not valid JSON: EOF")
