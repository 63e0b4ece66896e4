"""Alert rules: the metric catalog, the rule grammar and its parser.

A rule is one line, ``<metric> <op> <number> [for <duration>]``::

    p99_ms > 50 for 2m
    error_rate >= 0.05
    drift:age > 0.2 for 5m
    drift:"petal length (cm)" > 0.2
    accuracy < 0.8 for 1h

Everything here is pure: parsing reads no clock, does no I/O and raises
:class:`~modelyard.core.errors.InvalidInput` with a message naming the rule, the problem
and the offending token. ``str(rule)`` is the normalised text, and parsing it gives the
same rule back.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from modelyard.core.errors import InvalidInput

__all__ = [
    "MAX_FOR_S",
    "METRICS",
    "OPS",
    "AlertRule",
    "MetricInfo",
    "Op",
    "check_features",
    "format_duration",
    "format_number",
    "parse_duration",
    "parse_rule",
]

Op: TypeAlias = Literal[">", ">=", "<", "<=", "==", "!="]

#: The comparison operators a rule may use.
OPS: Final[tuple[Op, ...]] = (">", ">=", "<", "<=", "==", "!=")

#: The longest ``for`` duration a rule may have: 7 days.
MAX_FOR_S: Final[float] = 7 * 86400.0

_UNIT_S: Final[Mapping[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One entry of the metric catalog.

    Attributes:
        name: the metric's name in a rule (``p99_ms``; ``drift`` for ``drift:<feature>``).
        syntax: how a rule spells it (``p99_ms``, ``drift:<feature>``).
        description: one line for ``modelyard alerts metrics`` and the docs.
        unit: the unit of its value (``ms``, ``requests/s``, ``ratio`` …).
        per_feature: whether the metric names a model feature (``drift:age``).
    """

    name: str
    syntax: str
    description: str
    unit: str
    per_feature: bool = False


def _catalog(*infos: MetricInfo) -> Mapping[str, MetricInfo]:
    return MappingProxyType({info.name: info for info in infos})


#: The metrics a rule may watch, by name, in the order the CLI lists them.
METRICS: Final[Mapping[str, MetricInfo]] = _catalog(
    MetricInfo("rps", "rps", "requests per second answered by the gateway", "requests/s"),
    MetricInfo("p50_ms", "p50_ms", "median request latency at the gateway", "ms"),
    MetricInfo("p90_ms", "p90_ms", "90th percentile request latency at the gateway", "ms"),
    MetricInfo("p99_ms", "p99_ms", "99th percentile request latency at the gateway", "ms"),
    MetricInfo(
        "error_rate", "error_rate", "share of requests answered with a 5xx status (0..1)", "ratio"
    ),
    MetricInfo("replicas", "replicas", "replicas that are ready to serve", "replicas"),
    MetricInfo("in_flight", "in_flight", "requests being served right now", "requests"),
    MetricInfo("queued", "queued", "requests waiting in the gateway's queue", "requests"),
    MetricInfo(
        "drift_share", "drift_share", "share of features detected as drifted (0..1)", "ratio"
    ),
    MetricInfo(
        "drift",
        "drift:<feature>",
        "one feature's drift statistic against the training data",
        "score",
        per_feature=True,
    ),
    MetricInfo(
        "drifted",
        "drifted:<feature>",
        "1 if the feature is detected as drifted, else 0",
        "0/1",
        per_feature=True,
    ),
    MetricInfo("accuracy", "accuracy", "accuracy on labelled predictions (0..1)", "ratio"),
    MetricInfo("auc", "auc", "ROC AUC on labelled predictions (0..1)", "ratio"),
    MetricInfo(
        "log_dropped",
        "log_dropped",
        "prediction-log rows dropped by its byte budget over the rate window",
        "rows",
    ),
)

_METRIC_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_FEATURE_RE: Final = re.compile(r'[^\s<>=!"\\]+')
_OP_CHARS: Final = frozenset("<>=!")
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NOT_FINITE: Final = frozenset({"nan", "inf", "infinity"})
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")
_OPS_HELP: Final = "use " + ", ".join(OPS)


def format_number(value: float) -> str:
    """The shortest text that parses back to ``value``: ``50`` for 50.0, ``0.3``, ``1e-07``."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_duration(seconds: float) -> str:
    """A duration in the rule grammar, in the largest unit that divides it: ``2m``, ``90s``.

    Durations are kept to the millisecond; a fraction of a second is written ``1.5s``.
    """
    ms = round(seconds * 1000)
    for unit in ("d", "h", "m", "s"):
        unit_ms = _UNIT_S[unit] * 1000
        if ms % unit_ms == 0 and ms > 0:
            return f"{ms // unit_ms}{unit}"
    if ms == 0:
        return "0s"
    return f"{Decimal(ms) / 1000}s"


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``1.5m``, ``2h`` or ``7d``.

    Raises:
        InvalidInput: not ``<number><s|m|h|d>``, finer than a millisecond, or over 7 days.
    """
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise InvalidInput(f"duration '{text}': use a number followed by s, m, h or d")
    try:
        ms = Decimal(match.group(1)) * _UNIT_S[match.group(2)] * 1000
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise InvalidInput(f"duration '{text}': use a number followed by s, m, h or d") from exc
    if ms != ms.to_integral_value():
        raise InvalidInput(f"duration '{text}': keep it to whole milliseconds")
    seconds = float(ms) / 1000
    if seconds > MAX_FOR_S:
        raise InvalidInput(f"duration '{text}' is longer than the maximum, 7d")
    return seconds


def _quote_feature(feature: str) -> str:
    if _BARE_FEATURE_RE.fullmatch(feature):
        return feature
    return '"' + feature.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A parsed alert rule: ``<metric>[:<feature>] <op> <threshold> [for <for_s>]``.

    Build one with :func:`parse_rule`; constructing it directly validates the same way.

    Attributes:
        metric: a name in :data:`METRICS` (``p99_ms``, ``drift``).
        feature: the feature of a per-feature metric (``drift:age`` → ``age``), else None.
        op: the comparison that makes the alert's condition true.
        threshold: a finite number.
        for_s: seconds the condition must hold before the alert fires; 0 = at once.
    """

    metric: str
    feature: str | None
    op: Op
    threshold: float
    for_s: float = 0.0

    def __post_init__(self) -> None:
        info = METRICS.get(self.metric)
        if info is None:
            raise InvalidInput(_unknown_metric(self.metric))
        if info.per_feature and not self.feature:
            raise InvalidInput(f"metric '{self.metric}' needs a feature: {info.syntax}")
        if not info.per_feature and self.feature is not None:
            raise InvalidInput(f"metric '{self.metric}' takes no feature")
        if self.op not in OPS:
            raise InvalidInput(f"unknown operator '{self.op}' ({_OPS_HELP})")
        if not math.isfinite(self.threshold):
            raise InvalidInput(f"threshold must be a finite number, got {self.threshold!r}")
        if not (math.isfinite(self.for_s) and 0.0 <= self.for_s <= MAX_FOR_S):
            raise InvalidInput(f"for must be between 0s and 7d, got {self.for_s!r} s")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "for_s", round(float(self.for_s) * 1000) / 1000)

    @property
    def metric_key(self) -> str:
        """The metric as a rule names it: ``p99_ms``, ``drift:age``."""
        if self.feature is None:
            return self.metric
        return f"{self.metric}:{_quote_feature(self.feature)}"

    @property
    def text(self) -> str:
        """The normalised rule text; :func:`parse_rule` of it gives this rule back."""
        text = f"{self.metric_key} {self.op} {format_number(self.threshold)}"
        if self.for_s > 0:
            text += f" for {format_duration(self.for_s)}"
        return text

    def __str__(self) -> str:
        return self.text

    def holds(self, value: float) -> bool:
        """Whether ``value`` makes the rule's condition true (NaN never does)."""
        t = self.threshold
        match self.op:
            case ">":
                return value > t
            case ">=":
                return value >= t
            case "<":
                return value < t
            case "<=":
                return value <= t
            case "==":
                return value == t
            case "!=":
                return value != t and not math.isnan(value)


def _unknown_metric(name: str) -> str:
    known = ", ".join(info.syntax for info in METRICS.values())
    close = difflib.get_close_matches(name.lower(), list(METRICS), n=1)
    hint = f"; did you mean '{METRICS[close[0]].syntax}'?" if close else ""
    return f"unknown metric '{name}' (known: {known}){hint}"


class _Scanner:
    """Walks one rule's text, keeping the position for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(f"rule '{self.text}': {message}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def column(self) -> int:
        return self.pos + 1

    def word(self) -> str:
        """The run of non-space characters at the position (not consumed)."""
        end = self.pos
        while end < len(self.text) and not self.text[end].isspace():
            end += 1
        return self.text[self.pos : end]

    def take(self, n: int) -> str:
        token = self.text[self.pos : self.pos + n]
        self.pos += n
        return token

    def quoted(self) -> str:
        """A double-quoted string at the position, with ``\\\\`` and ``\\"`` escapes."""
        start = self.column()
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ch == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] not in '\\"':
                    raise self.fail(
                        f'bad escape in the feature name at column {self.pos}: use \\" or \\\\'
                    )
                ch = self.text[self.pos]
                self.pos += 1
            out.append(ch)
        raise self.fail(f"the feature name quoted at column {start} has no closing quote")


def parse_rule(text: str) -> AlertRule:
    """Parse ``<metric> <op> <number> [for <duration>]``.

    Whitespace around the tokens is optional except before ``for``. A per-feature metric
    names its feature after a colon, bare (``drift:age``) or double-quoted when it has
    spaces or operator characters (``drift:"petal length (cm)"``).

    Raises:
        InvalidInput: naming the rule and the problem: an unknown metric (listing the
            known ones), an unknown operator, a threshold that is not a finite number, a
            bad duration, or anything after the duration.
    """
    text = text.strip()
    if not text:
        raise InvalidInput(
            "empty rule: write <metric> <op> <number> [for <duration>], e.g. 'p99_ms > 50 for 2m'"
        )
    sc = _Scanner(text)

    # metric
    match = _METRIC_RE.match(text)
    if match is None:
        raise sc.fail(f"expected a metric name at column 1, got '{sc.word()}'")
    metric = sc.take(match.end())
    info = METRICS.get(metric)
    if info is None:
        raise sc.fail(_unknown_metric(metric))

    # feature
    feature: str | None = None
    if not sc.at_end() and text[sc.pos] == ":":
        sc.take(1)
        if not info.per_feature:
            raise sc.fail(f"metric '{metric}' takes no feature")
        if not sc.at_end() and text[sc.pos] == '"':
            feature = sc.quoted()
        else:
            bare = _BARE_FEATURE_RE.match(text, sc.pos)
            feature = sc.take(bare.end() - sc.pos) if bare else ""
        if not feature:
            raise sc.fail(f"metric '{metric}:' needs a feature name: {info.syntax}")
    elif info.per_feature:
        raise sc.fail(f"metric '{metric}' needs a feature: {info.syntax}")

    # operator
    sc.skip_space()
    start = sc.pos
    while not sc.at_end() and text[sc.pos] in _OP_CHARS:
        sc.pos += 1
    op = text[start : sc.pos]
    if not op:
        found = f"got '{sc.word()}'" if sc.word() else "the rule ends there"
        raise sc.fail(f"expected an operator at column {start + 1}, {found} ({_OPS_HELP})")
    if op not in OPS:
        raise sc.fail(f"unknown operator '{op}' ({_OPS_HELP})")

    # threshold
    sc.skip_space()
    column = sc.column()
    token = sc.word()
    if not token:
        raise sc.fail(f"expected a number after '{op}'")
    if token.lower().lstrip("+-") in _NOT_FINITE:
        raise sc.fail(f"threshold must be a finite number, got '{token}'")
    if _NUMBER_RE.fullmatch(token) is None:
        raise sc.fail(f"expected a number after '{op}' at column {column}, got '{token}'")
    threshold = float(token)
    if not math.isfinite(threshold):
        raise sc.fail(f"threshold must be a finite number, got '{token}'")
    sc.take(len(token))

    # for <duration>
    for_s = 0.0
    sc.skip_space()
    if not sc.at_end():
        column = sc.column()
        token = sc.word()
        if token.lower() != "for":
            raise sc.fail(
                f"unexpected '{token}' at column {column}: "
                "only 'for <duration>' may follow the threshold"
            )
        sc.take(len(token))
        sc.skip_space()
        duration = sc.word()
        if not duration:
            raise sc.fail("'for' needs a duration, e.g. 'for 2m'")
        try:
            for_s = parse_duration(duration)
        except InvalidInput as exc:
            raise sc.fail(exc.message) from None
        sc.take(len(duration))
        sc.skip_space()
        if not sc.at_end():
            raise sc.fail(f"unexpected '{sc.word()}' at column {sc.column()} after the duration")

    return AlertRule(metric, feature, op, threshold, for_s)


def check_features(rule: AlertRule, known_features: Collection[str]) -> None:
    """Refuse a per-feature rule whose feature the model does not have.

    Only the caller knows the deployment's model and its features, so this is separate
    from :func:`parse_rule`. Rules without a feature always pass.

    Raises:
        InvalidInput: naming the unknown feature and listing the known ones.
    """
    if rule.feature is None or rule.feature in known_features:
        return
    if not known_features:
        raise InvalidInput(
            f"rule '{rule}': unknown feature '{rule.feature}' (the model declares no features)"
        )
    names = sorted(known_features)
    listed = ", ".join(names[:30])
    if len(names) > 30:
        listed += f", … and {len(names) - 30} more"
    close = difflib.get_close_matches(rule.feature, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise InvalidInput(f"rule '{rule}': unknown feature '{rule.feature}' (known: {listed}){hint}")
