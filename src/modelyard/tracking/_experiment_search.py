"""MLflow's experiment search grammar (``experiments/search``), evaluated over entities.

Filter: conditions joined by ``AND`` on ``name`` (``=``, ``!=``, ``LIKE``, ``ILIKE``),
``creation_time`` / ``last_update_time`` (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``
with a number) and ``tags.<key>`` (``=``, ``!=``, ``LIKE``, ``ILIKE``); an attribute may
be prefixed ``attributes.``. Order: ``name``, ``experiment_id``, ``creation_time``,
``last_update_time``, each ``ASC`` (default) or ``DESC``; ties break on the id.
A project holds few experiments, so this runs over the project's list in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidInput
from modelyard.core.search import Token, comparator_at, parse_conjunction, unquote
from modelyard.core.tracking import Experiment

_INTEGER = re.compile(r"[-+]?\d+")
_STRING_OPS = {"=", "!=", "LIKE", "ILIKE"}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">="}
_ORDER_KEYS: dict[str, Callable[[Experiment], Any]] = {
    "name": lambda e: e.name,
    "experiment_id": lambda e: e.id,
    "creation_time": lambda e: e.creation_time_ms,
    "last_update_time": lambda e: e.last_update_time_ms,
}


@dataclass(frozen=True)
class _Condition:
    tag: bool
    key: str
    op: str
    value: str | int

    def holds(self, experiment: Experiment) -> bool:
        if self.tag:
            found = experiment.tags.get(self.key)
            return found is not None and _compare_text(found, self.op, str(self.value))
        if self.key == "name":
            return _compare_text(experiment.name, self.op, str(self.value))
        number: int = _ORDER_KEYS[self.key](experiment)
        value = int(self.value)
        return {
            "=": number == value,
            "!=": number != value,
            "<": number < value,
            "<=": number <= value,
            ">": number > value,
            ">=": number >= value,
        }[self.op]


def _compare_text(text: str, op: str, value: str) -> bool:
    if op == "=":
        return text == value
    if op == "!=":
        return text != value
    pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
    flags = re.IGNORECASE if op == "ILIKE" else 0
    return re.fullmatch(pattern, text, flags | re.DOTALL) is not None


def parse_experiment_filter(text: str | None) -> list[_Condition]:
    """The conditions of an ``experiments/search`` filter (``[]`` for none).

    Raises:
        InvalidInput: a condition outside the grammar, naming it.
    """
    return parse_conjunction(text, _clause)


def _clause(tokens: list[Token], i: int) -> tuple[_Condition, int]:
    kind, raw_key = tokens[i]
    if kind != "ident":
        raise InvalidInput(
            f"invalid experiment filter near {raw_key!r}: expected e.g. name LIKE 'a%', "
            "creation_time > 1700000000000 or tags.team = 'x'"
        )
    prefix, dot, rest = raw_key.partition(".")
    is_tag = bool(dot) and prefix.lower() in ("tag", "tags")
    if dot and prefix.lower() in ("attribute", "attributes", "attr"):
        raw_key = rest
    key = unquote(rest if is_tag else raw_key)
    op, i = comparator_at(tokens, i + 1, key)
    if i >= len(tokens) or tokens[i][0] not in ("string", "number"):
        raise InvalidInput(f"expected a value after {key!r} {op}")
    value_kind, raw_value = tokens[i]
    if is_tag or key == "name":
        if op not in _STRING_OPS or value_kind != "string":
            raise InvalidInput(
                f"invalid condition on {key!r}: it compares with =, !=, LIKE or ILIKE to a "
                "quoted string"
            )
        return _Condition(is_tag, key, op, unquote(raw_value)), i + 1
    if key in ("creation_time", "last_update_time"):
        if op not in _NUMBER_OPS or value_kind != "number" or not _INTEGER.fullmatch(raw_value):
            raise InvalidInput(
                f"invalid condition on {key!r}: it compares with =, !=, <, <=, > or >= to an "
                "integer"
            )
        return _Condition(False, key, op, int(raw_value)), i + 1
    raise InvalidInput(
        f"invalid experiment filter attribute {key!r}: use name, creation_time, "
        "last_update_time or tags.<key>"
    )


def sort_key_of(order_by: list[str] | None) -> list[tuple[Callable[[Experiment], Any], bool]]:
    """``(key function, descending)`` per ``order_by`` term, the id last as a tie-break.

    Raises:
        InvalidInput: an unknown column or direction.
    """
    terms: list[tuple[Callable[[Experiment], Any], bool]] = []
    for item in order_by or []:
        words = item.split()
        if not 1 <= len(words) <= 2:
            raise InvalidInput(f"invalid order_by {item!r}: expected e.g. 'name DESC'")
        column = words[0]
        if column.lower().startswith(("attributes.", "attribute.", "attr.")):
            column = column.split(".", 1)[1]
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if column not in _ORDER_KEYS or direction not in ("ASC", "DESC"):
            raise InvalidInput(
                f"invalid order_by {item!r}: order by name, experiment_id, creation_time "
                "or last_update_time, ASC or DESC"
            )
        terms.append((_ORDER_KEYS[column], direction == "DESC"))
    terms.append((_ORDER_KEYS["experiment_id"], False))
    return terms


def search(
    experiments: list[Experiment], filter_string: str | None, order_by: list[str] | None
) -> list[Experiment]:
    """``experiments`` that satisfy the filter, in the asked order.

    Raises:
        InvalidInput: a malformed filter or order.
    """
    conditions = parse_experiment_filter(filter_string)
    terms = sort_key_of(order_by)
    found = [e for e in experiments if all(c.holds(e) for c in conditions)]
    for key, descending in reversed(terms):  # stable sorts, least significant first
        found.sort(key=key, reverse=descending)
    return found
