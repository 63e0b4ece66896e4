"""Whether a shadow revision answered like the primary one."""

from __future__ import annotations

import json
import math

#: Top-level keys that legitimately differ between revisions (OIP ``model_version``…).
IGNORED_KEYS = frozenset({"model_name", "model_version", "id"})
REL_TOLERANCE = 1e-6
ABS_TOLERANCE = 1e-6

_NOT_JSON = object()


def responses_agree(
    primary_status: int, primary_body: bytes, shadow_status: int, shadow_body: bytes
) -> bool:
    """Whether two answers to the same request agree.

    Statuses must be equal. Bodies that both parse as JSON are compared structurally,
    ignoring the top-level keys ``model_name``, ``model_version`` and ``id``, with numbers
    equal within a relative or absolute tolerance of 1e-6 (``1`` equals ``1.0``); any
    other bodies must be byte-for-byte equal.

    Args:
        primary_status: The status the caller got.
        primary_body: The body the caller got.
        shadow_status: The shadow revision's status.
        shadow_body: The shadow revision's body.

    Returns:
        True when they agree.
    """
    if primary_status != shadow_status:
        return False
    if primary_body == shadow_body:
        return True
    primary = _parse(primary_body)
    shadow = _parse(shadow_body)
    if primary is _NOT_JSON or shadow is _NOT_JSON:
        return False
    if isinstance(primary, dict) and isinstance(shadow, dict):
        primary = {k: v for k, v in primary.items() if k not in IGNORED_KEYS}
        shadow = {k: v for k, v in shadow.items() if k not in IGNORED_KEYS}
    return _equal(primary, shadow)


def _parse(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def _equal(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE) or (
            math.isnan(a) and math.isnan(b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
