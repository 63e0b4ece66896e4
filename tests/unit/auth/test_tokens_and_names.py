from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.auth._names import validate_label, validate_project_name, validate_user_name
from modelyard.auth._tokens import generate_token, hash_token, parse_token, token_matches
from modelyard.core.errors import InvalidInput, Unauthenticated


def test_generated_tokens_parse_and_match_only_their_hash() -> None:
    a, b = generate_token(), generate_token()
    assert a.plaintext != b.plaintext
    assert parse_token(a.plaintext) == a.token_id
    assert a.sha256 == hash_token(a.plaintext)
    assert a.plaintext not in a.sha256
    assert token_matches(a.plaintext, a.sha256)
    assert not token_matches(b.plaintext, a.sha256)


@given(st.text(max_size=120))
def test_arbitrary_strings_never_parse_unless_well_formed(text: str) -> None:
    try:
        token_id = parse_token(text)
    except Unauthenticated:
        return
    assert text.strip().startswith(f"myt_{token_id}_")


@pytest.mark.parametrize("name", ["default", "fraud-team", "a", "a1", "x" * 63])
def test_good_project_names(name: str) -> None:
    assert validate_project_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a_b", "x" * 64, "a b", "é", "a\x00"])
def test_bad_project_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="project name"):
        validate_project_name(name)


@pytest.mark.parametrize("name", ["alice", "alice@example.com", "svc.ci-bot+1"])
def test_good_user_names(name: str) -> None:
    assert validate_user_name(name) == name


@pytest.mark.parametrize("name", ["", "@x", "a b", "a/b", "x" * 129])
def test_bad_user_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="user name"):
        validate_user_name(name)


def test_labels() -> None:
    assert validate_label("token name", "ci laptop: 2026") == "ci laptop: 2026"
    with pytest.raises(InvalidInput, match="token name"):
        validate_label("token name", "new\nline")
