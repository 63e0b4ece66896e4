"""Shadow agreement: equal statuses and equal JSON, ignoring identity keys, within 1e-6."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.gateway import responses_agree


def _j(value: object) -> bytes:
    return json.dumps(value).encode()


def test_identity_keys_are_ignored_at_top_level() -> None:
    primary = _j({"model_name": "a", "model_version": "1", "id": "x", "outputs": [1, 2]})
    shadow = _j({"model_name": "b", "model_version": "2", "id": "y", "outputs": [1, 2]})
    assert responses_agree(200, primary, 200, shadow)


def test_identity_keys_count_below_top_level() -> None:
    primary = _j({"outputs": [{"id": 1, "data": [0.5]}]})
    shadow = _j({"outputs": [{"id": 2, "data": [0.5]}]})
    assert not responses_agree(200, primary, 200, shadow)


def test_a_missing_ignored_key_still_agrees() -> None:
    assert responses_agree(200, _j({"id": "1", "p": [0]}), 200, _j({"p": [0]}))


def test_statuses_must_match() -> None:
    body = _j({"predictions": [1]})
    assert not responses_agree(200, body, 500, body)


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        (1.0, 1.0 + 1e-9, True),
        (1e9, 1e9 * (1 + 1e-7), True),
        (0.0, 5e-7, True),
        (0.0, 1e-5, False),
        (1.0, 1.001, False),
        (1, 1.0, True),
        (True, 1, False),
        ("1", 1, False),
        (None, 0, False),
    ],
)
def test_numbers_within_tolerance(a: object, b: object, agree: bool) -> None:
    assert responses_agree(200, _j({"p": [a]}), 200, _j({"p": [b]})) is agree


def test_structure_must_match() -> None:
    assert not responses_agree(200, _j({"p": [1, 2]}), 200, _j({"p": [1, 2, 3]}))
    assert not responses_agree(200, _j({"p": 1}), 200, _j({"q": 1}))
    assert not responses_agree(200, _j([1]), 200, _j({"p": 1}))


def test_non_json_bodies_compare_bytes() -> None:
    assert responses_agree(200, b"1,2\n", 200, b"1,2\n")
    assert not responses_agree(200, b"1,2\n", 200, b"1,2 \n")
    assert not responses_agree(200, b"not json", 200, _j({"a": 1}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(json_values)
def test_a_response_agrees_with_itself(value: object) -> None:
    body = _j(value)
    assert responses_agree(200, body, 200, body)
    assert responses_agree(200, body, 200, json.dumps(value, indent=2).encode())
