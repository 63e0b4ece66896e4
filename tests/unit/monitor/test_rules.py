"""Alert rules: the grammar, its errors, normalisation and the metric catalog."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
from hypothesis import given

from modelyard.core.errors import InvalidInput
from modelyard.monitor.rules import (
    MAX_FOR_S,
    METRICS,
    OPS,
    AlertRule,
    check_features,
    format_duration,
    parse_duration,
    parse_rule,
)


@pytest.mark.parametrize(
    ("text", "metric", "feature", "op", "threshold", "for_s", "normalised"),
    [
        ("p99_ms > 50 for 2m", "p99_ms", None, ">", 50.0, 120.0, "p99_ms > 50 for 2m"),
        ("error_rate >= 0.05", "error_rate", None, ">=", 0.05, 0.0, "error_rate >= 0.05"),
        ("drift_share > 0.3 for 10m", "drift_share", None, ">", 0.3, 600.0, None),
        ("drift:age > 0.2 for 5m", "drift", "age", ">", 0.2, 300.0, None),
        ("accuracy < 0.8 for 1h", "accuracy", None, "<", 0.8, 3600.0, None),
        ("  p99_ms>50   for   90s ", "p99_ms", None, ">", 50.0, 90.0, "p99_ms > 50 for 90s"),
        ("p99_ms > 50 for 1.5m", "p99_ms", None, ">", 50.0, 90.0, "p99_ms > 50 for 90s"),
        ("p50_ms <= 5.0 FOR 120s", "p50_ms", None, "<=", 5.0, 120.0, "p50_ms <= 5 for 2m"),
        ("replicas == 0 for 7d", "replicas", None, "==", 0.0, MAX_FOR_S, None),
        ("rps != 1e3", "rps", None, "!=", 1000.0, 0.0, "rps != 1000"),
        ("in_flight > -2", "in_flight", None, ">", -2.0, 0.0, None),
        ("queued > .5 for 0.25s", "queued", None, ">", 0.5, 0.25, "queued > 0.5 for 0.25s"),
        ("drifted:income == 1", "drifted", "income", "==", 1.0, 0.0, None),
        ('drift:"petal length (cm)" > 0.2', "drift", "petal length (cm)", ">", 0.2, 0.0, None),
        ('drift:"a\\"b" > 1', "drift", 'a"b', ">", 1.0, 0.0, None),
        ("drift:a.b/c-d>1", "drift", "a.b/c-d", ">", 1.0, 0.0, "drift:a.b/c-d > 1"),
        ("log_dropped > 0 for 0s", "log_dropped", None, ">", 0.0, 0.0, "log_dropped > 0"),
        ("auc < 0.7", "auc", None, "<", 0.7, 0.0, None),
    ],
)
def test_parse_rule(
    text: str,
    metric: str,
    feature: str | None,
    op: str,
    threshold: float,
    for_s: float,
    normalised: str | None,
) -> None:
    rule = parse_rule(text)
    assert (rule.metric, rule.feature, rule.op, rule.threshold, rule.for_s) == (
        metric,
        feature,
        op,
        threshold,
        for_s,
    )
    assert str(rule) == rule.text == (normalised if normalised is not None else text.strip())
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99_ms >> 50", "rule 'p99_ms >> 50': unknown operator '>>' (use >, >=, <, <=, ==, !=)"),
        ("p99_ms => 50", "unknown operator '=>'"),
        ("p99_ms = 50", "unknown operator '='"),
        ("p98_ms > 50", "unknown metric 'p98_ms' (known: rps, p50_ms"),
        ("p98_ms > 50", "did you mean 'p99_ms'?"),
        ("p99_ms > 50 for 2x", "duration '2x': use a number followed by s, m, h or d"),
        ("p99_ms > 50 for -2m", "duration '-2m': use a number"),
        ("p99_ms > 50 for 2", "duration '2': use a number"),
        ("p99_ms > 50 for 8d", "duration '8d' is longer than the maximum, 7d"),
        ("p99_ms > 50 for 0.0001s", "whole milliseconds"),
        ("p99_ms > nan", "threshold must be a finite number, got 'nan'"),
        ("p99_ms > NaN for 2m", "threshold must be a finite number, got 'NaN'"),
        ("p99_ms > inf", "threshold must be a finite number, got 'inf'"),
        ("p99_ms > -Infinity", "threshold must be a finite number, got '-Infinity'"),
        ("p99_ms > 1e999", "threshold must be a finite number, got '1e999'"),
        ("p99_ms > fifty", "expected a number after '>' at column 10, got 'fifty'"),
        ("p99_ms > 1_000", "got '1_000'"),
        ("p99_ms >", "expected a number after '>'"),
        ("p99_ms", "expected an operator at column 7, the rule ends there"),
        ("p99_ms 50", "expected an operator at column 8, got '50'"),
        ("p99_ms > 50 for 2m now", "unexpected 'now' at column 20 after the duration"),
        ("p99_ms > 50 during 2m", "unexpected 'during' at column 13"),
        ("p99_ms > 50 for", "'for' needs a duration"),
        ("p99_ms > 50for 2m", "got '50for'"),
        ("", "empty rule"),
        ("   ", "empty rule"),
        ("> 50", "expected a metric name at column 1, got '>'"),
        ("drift > 0.2", "metric 'drift' needs a feature: drift:<feature>"),
        ("drift: > 0.2", "metric 'drift:' needs a feature name"),
        ("p99_ms:age > 1", "metric 'p99_ms' takes no feature"),
        ('drift:"age > 1', "has no closing quote"),
        ('drift:"a\\x" > 1', "bad escape"),
    ],
)
def test_parse_rule_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_rule(text)
    assert message in str(info.value)


def test_errors_quote_the_rule() -> None:
    with pytest.raises(InvalidInput, match=r"^rule 'p99_ms > 50 for 2x': "):
        parse_rule("  p99_ms > 50 for 2x  ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("7d", MAX_FOR_S), ("0.001s", 0.001)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0s"), (1.5, "1.5s"), (90.0, "90s"), (120.0, "2m"), (5400.0, "90m"), (86400.0, "1d")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_catalog_lists_every_metric_with_description_and_unit() -> None:
    assert list(METRICS)[:4] == ["rps", "p50_ms", "p90_ms", "p99_ms"]
    expected = {
        "rps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "error_rate",
        "replicas",
        "in_flight",
        "queued",
        "drift_share",
        "drift",
        "drifted",
        "accuracy",
        "auc",
        "log_dropped",
    }
    assert set(METRICS) == expected
    for name, info in METRICS.items():
        assert info.name == name
        assert info.description
        assert info.unit
        assert info.syntax == (f"{name}:<feature>" if info.per_feature else name)
    assert {n for n, i in METRICS.items() if i.per_feature} == {"drift", "drifted"}
    with pytest.raises(TypeError):
        METRICS["x"] = METRICS["rps"]  # type: ignore[index]


def test_direct_construction_is_validated() -> None:
    assert AlertRule("p99_ms", None, ">", 50, 120).text == "p99_ms > 50 for 2m"
    with pytest.raises(InvalidInput, match="unknown metric"):
        AlertRule("nope", None, ">", 1)
    with pytest.raises(InvalidInput, match="needs a feature"):
        AlertRule("drift", None, ">", 1)
    with pytest.raises(InvalidInput, match="takes no feature"):
        AlertRule("rps", "age", ">", 1)
    with pytest.raises(InvalidInput, match="unknown operator"):
        AlertRule("rps", None, "=>", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="finite"):
        AlertRule("rps", None, ">", math.nan)
    with pytest.raises(InvalidInput, match="between 0s and 7d"):
        AlertRule("rps", None, ">", 1, -1)
    with pytest.raises(InvalidInput, match="between 0s and 7d"):
        AlertRule("rps", None, ">", 1, MAX_FOR_S + 1)


@pytest.mark.parametrize(
    ("op", "below", "at", "above"),
    [
        (">", False, False, True),
        (">=", False, True, True),
        ("<", True, False, False),
        ("<=", True, True, False),
        ("==", False, True, False),
        ("!=", True, False, True),
    ],
)
def test_holds(op: str, below: bool, at: bool, above: bool) -> None:
    rule = parse_rule(f"rps {op} 10")
    assert (rule.holds(9.0), rule.holds(10.0), rule.holds(11.0)) == (below, at, above)
    assert not rule.holds(math.nan)


def test_check_features() -> None:
    rule = parse_rule("drift:agee > 0.2")
    check_features(parse_rule("p99_ms > 1"), [])  # no feature: always fine
    check_features(parse_rule("drift:age > 0.2"), {"age", "income"})
    with pytest.raises(InvalidInput) as info:
        check_features(rule, ["income", "age"])
    assert str(info.value) == (
        "rule 'drift:agee > 0.2': unknown feature 'agee' (known: age, income); did you mean 'age'?"
    )
    with pytest.raises(InvalidInput, match="declares no features"):
        check_features(rule, [])
    many = [f"f{i:03d}" for i in range(50)]
    with pytest.raises(InvalidInput, match=r"… and 20 more"):
        check_features(rule, many)


# --- round trip (Hypothesis) ---------------------------------------------------------


@st.composite
def rules(draw: st.DrawFn) -> AlertRule:
    metric = draw(st.sampled_from(sorted(METRICS)))
    feature = draw(st.text(min_size=1, max_size=12)) if METRICS[metric].per_feature else None
    threshold = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    for_ms = draw(st.one_of(st.just(0), st.integers(0, int(MAX_FOR_S * 1000))))
    return AlertRule(metric, feature, draw(st.sampled_from(OPS)), threshold, for_ms / 1000)


@given(rules())
def test_str_round_trips_through_the_parser(rule: AlertRule) -> None:
    again = parse_rule(str(rule))
    assert again == rule
    assert str(again) == str(rule)


@given(rules(), st.text(alphabet=" \t", max_size=3), st.text(alphabet=" \t", max_size=3))
def test_outer_whitespace_is_ignored(rule: AlertRule, before: str, after: str) -> None:
    assert parse_rule(before + str(rule) + after) == rule


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    try:
        rule = parse_rule(text)
    except InvalidInput as exc:
        message = str(exc)
    else:
        assert parse_rule(str(rule)) == rule
        return
    assert message.startswith(("rule '", "empty rule"))
