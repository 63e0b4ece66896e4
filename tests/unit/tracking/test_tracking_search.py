from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput
from modelyard.core.search import (
    Comparison,
    Entity,
    OrderBy,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)
from modelyard.store.registry_search import parse_filter as parse_registry_filter
from modelyard.tracking._experiment_search import parse_experiment_filter


def test_a_full_filter() -> None:
    text = (
        "metrics.auc > 0.9 and params.max_depth = '8' and tags.`team name` IN ('a', \"b\") "
        "and attributes.status != 'FAILED' and run_name LIKE 'rf%' and tags.x NOT IN ('y')"
    )
    assert parse_filter(text) == [
        Comparison(Entity.METRIC, "auc", ">", 0.9),
        Comparison(Entity.PARAM, "max_depth", "=", "8"),
        Comparison(Entity.TAG, "team name", "IN", ("a", "b")),
        Comparison(Entity.ATTRIBUTE, "status", "!=", "FAILED"),
        Comparison(Entity.ATTRIBUTE, "run_name", "LIKE", "rf%"),
        Comparison(Entity.TAG, "x", "NOT IN", ("y",)),
    ]


def test_keys_with_dots_slashes_and_mlflow_tags() -> None:
    assert parse_filter("tags.mlflow.runName = 'a' and metrics.val/loss <= -1e-3") == [
        Comparison(Entity.TAG, "mlflow.runName", "=", "a"),
        Comparison(Entity.METRIC, "val/loss", "<=", -0.001),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metrics.auc >", "expected a value"),
        ("metrics.auc ~ 3", "invalid filter"),
        ("nonsense = 1", "unknown attribute"),
        ("metrics.a > 1 OR metrics.b > 1", "OR is not supported"),
        ("params.a > '1'", "does not apply"),
        ("metrics.a LIKE 'x'", "does not apply"),
        ("metrics.a = 'abc'", "not a number"),
        ("params.a = 1", "quote the value"),
        ("metrics.a > 1 AND", "ends with AND"),
        ("params.a IN 'x'", "parenthesised"),
        ("params.a IN ('x'", "unclosed"),
        ("metrics.a > 1 metrics.b > 2", "expected AND"),
    ],
)
def test_errors_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_filter(text)


def test_empty_filters() -> None:
    assert parse_filter(None) == []
    assert parse_filter("   ") == []


def test_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "start_time", "params.`a b` asc"]) == [
        OrderBy(Entity.METRIC, "auc", ascending=False),
        OrderBy(Entity.ATTRIBUTE, "start_time", ascending=True),
        OrderBy(Entity.PARAM, "a b", ascending=True),
    ]
    with pytest.raises(InvalidInput):
        parse_order_by(["bogus DESC"])


@given(st.integers(min_value=0, max_value=10**12))
def test_page_tokens_round_trip(offset: int) -> None:
    assert decode_page_token(encode_page_token(offset)) == offset


@given(st.text(max_size=40))
def test_garbage_page_tokens_are_rejected_cleanly(token: str) -> None:
    with contextlib.suppress(InvalidInput):
        decode_page_token(token)


@given(st.text(max_size=80))
def test_the_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_filter(text)


@given(st.text(max_size=80))
def test_the_registry_and_experiment_parsers_never_crash(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_registry_filter("version", text)
    with contextlib.suppress(InvalidInput):
        parse_experiment_filter(text)


def test_one_grammar_for_runs_registry_and_experiments() -> None:
    # The same tokens, quoting, AND-joining and errors in all three searches.
    assert parse_filter("tags.`a b` <> 'x'") == [Comparison(Entity.TAG, "a b", "!=", "x")]
    assert parse_registry_filter("model", "tags.`a b` <> 'x'")[0].comparator == "!="
    assert parse_experiment_filter("tags.`a b` <> 'x'")[0].op == "!="
    for parse in (
        parse_filter,
        lambda t: parse_registry_filter("model", t),
        parse_experiment_filter,
    ):
        with pytest.raises(InvalidInput, match="OR is not supported"):
            parse(f"{'name' if parse is not parse_filter else 'run_name'} = 'a' OR name = 'b'")
        with pytest.raises(InvalidInput, match="ends with AND"):
            parse(f"{'name' if parse is not parse_filter else 'run_name'} = 'a' AND")
    assert decode_page_token("eyJvZmZzZXQiOiAzfQ==") == 3  # MLflow's own token for offset 3
