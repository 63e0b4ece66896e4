"""Dataset names and name@version references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.datasets import DatasetRef, parse_ref, validate_dataset_name
from modelyard.core.errors import InvalidInput

NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,40}", fullmatch=True)


@given(NAMES, st.one_of(st.none(), st.integers(1, 10**9)))
def test_refs_round_trip(name: str, version: int | None) -> None:
    ref = DatasetRef(name, version)
    assert parse_ref(str(ref)) == ref


@given(NAMES, st.integers(1, 10**6))
def test_plain_numbers_and_bare_names(name: str, version: int) -> None:
    assert parse_ref(f"{name}@{version}") == DatasetRef(name, version)
    assert parse_ref(name) == DatasetRef(name, None)


@given(st.text(max_size=10), st.sampled_from("/@"), st.text(max_size=10))
def test_names_with_slash_or_at_are_rejected(before: str, separator: str, after: str) -> None:
    name = before + separator + after
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        validate_dataset_name(name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid dataset reference"),
        ("a@v0", "invalid dataset version"),
        ("a@vx", "invalid dataset version"),
        ("a@v1@v2", "more than one '@'"),
        ("a/b@v1", "contains '/'"),
        ("-a", "invalid dataset name"),
    ],
)
def test_bad_references_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_ref(text)
