"""MLflow's registry search grammar, compiled to SQL over the registry tables.

``search_registered_models`` and ``search_model_versions`` take a filter of comparisons
joined by ``AND`` and a list of ``order_by`` terms, as MLflow's SQL store accepts them::

    name LIKE 'churn%' AND tags.team = 'risk'
    run_id IN ('0a…', '1b…') AND version_number >= 2 AND source_path LIKE 'runs:/%'
    order_by: ["last_updated_timestamp DESC", "name ASC"]

Registered models filter on ``name`` (``= != LIKE ILIKE IN, NOT IN``) and tags
(``tags.<key>`` / ``tag.<key>``, ``= != LIKE ILIKE``; a model without the tag never
matches). Versions filter on ``name`` and ``run_id`` (string comparators, lists too),
``source_path`` (string comparators, no lists), ``version_number`` (``= != < <= > >=``
against an integer) and tags. ``LIKE`` is case-sensitive on every backend, ``ILIKE``
is not. As in MLflow, a model or version tagged ``mlflow.prompt.is_prompt = 'true'`` is
a prompt: it is left out unless the filter names that tag, and an untagged one compares
as ``'false'``.

The tokens, AND-joining, IN lists and page tokens (MLflow's: base64 of
``{"offset": N}``) are :mod:`modelyard.core.search`'s, shared with the run and experiment
searches. Errors raise ``InvalidInput`` naming the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, func, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from modelyard.core.errors import InvalidInput
from modelyard.core.search import (
    Token,
    comparator_at,
    parse_conjunction,
    string_list_at,
    unquote,
)
from modelyard.store.schema import (
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

Target = Literal["model", "version"]
PROMPT_TAG = "mlflow.prompt.is_prompt"
MODEL_MAX_RESULTS = 1000
MODEL_DEFAULT_MAX_RESULTS = 100
VERSION_MAX_RESULTS = 200_000
VERSION_DEFAULT_MAX_RESULTS = 10_000

_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
# attribute → (kind, may compare with a list)
_ATTRIBUTES: dict[Target, dict[str, tuple[str, bool]]] = {
    "model": {"name": ("string", True)},
    "version": {
        "name": ("string", True),
        "run_id": ("string", True),
        "source_path": ("string", False),
        "version_number": ("number", False),
    },
}
_ORDER_KEYS: dict[Target, tuple[str, ...]] = {
    "model": ("name", "creation_timestamp", "last_updated_timestamp"),
    "version": ("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
}
DEFAULT_VERSION_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")


@dataclass(frozen=True)
class Clause:
    """One comparison: ``attribute`` or ``tag``, its key, comparator and value."""

    kind: Literal["attribute", "tag"]
    key: str
    comparator: str
    value: str | int | tuple[str, ...]


@dataclass(frozen=True)
class Order:
    key: str
    ascending: bool


def _identifier(target: Target, text: str) -> tuple[Literal["attribute", "tag"], str]:
    prefix, dot, rest = text.partition(".")
    if dot and not prefix.startswith(("`", '"')) and prefix.lower() in ("tag", "tags"):
        key = unquote(rest)
        if not key:
            raise InvalidInput(f"invalid identifier {text!r}: the tag key is empty")
        return "tag", key
    if dot and not prefix.startswith(("`", '"')) and prefix.lower() in ("attribute", "attr"):
        text = rest
    elif dot and "`" not in text and '"' not in text:
        raise InvalidInput(
            f"invalid entity type {prefix!r} in {text!r}: use tags.<key> or an attribute"
        )
    key = unquote(text)
    if key not in _ATTRIBUTES[target]:
        valid = ", ".join(sorted(_ATTRIBUTES[target]))
        raise InvalidInput(f"invalid attribute key {key!r}: valid keys are {valid}")
    return "attribute", key


def parse_filter(target: Target, text: str | None) -> list[Clause]:
    """Parse a registry filter into clauses (all must hold).

    Args:
        target: ``model`` (registered models) or ``version`` (model versions).
        text: The filter; empty or ``None`` matches everything.

    Returns:
        The comparisons in order.

    Raises:
        InvalidInput: a syntax error, ``OR``, an unknown attribute, a comparator the key
            does not support, or a value of the wrong type.
    """
    return parse_conjunction(text, lambda tokens, i: _clause(target, tokens, i))


def _clause(target: Target, tokens: list[Token], i: int) -> tuple[Clause, int]:
    if tokens[i][0] != "ident":
        raise InvalidInput(f"expected an attribute or tags.<key>, found {tokens[i][1]!r}")
    kind, key = _identifier(target, tokens[i][1])
    comparator, i = comparator_at(tokens, i + 1, key)
    allowed = _allowed_comparators(target, kind, key)
    if comparator not in allowed:
        raise InvalidInput(
            f"invalid comparator {comparator!r} for {kind} {key!r}: use one of "
            + ", ".join(allowed)
        )
    if comparator in ("IN", "NOT IN"):
        values, i = string_list_at(tokens, i)
        return Clause(kind, key, comparator, values), i
    if i >= len(tokens) or tokens[i][0] not in ("string", "number", "ident"):
        raise InvalidInput(f"expected a value after {key!r} {comparator}")
    value_kind, raw = tokens[i]
    value: str | int
    if kind == "attribute" and _ATTRIBUTES[target][key][0] == "number":
        text = unquote(raw) if value_kind == "string" else raw
        if not re.fullmatch(r"[-+]?\d+", text.strip()):
            raise InvalidInput(f"invalid value for numeric attribute {key!r}: {raw}")
        value = int(text)
    elif value_kind != "string":
        raise InvalidInput(f"expected a quoted string value for {key!r}, got {raw}")
    else:
        value = unquote(raw)
    return Clause(kind, key, comparator, value), i + 1


def _allowed_comparators(target: Target, kind: str, key: str) -> tuple[str, ...]:
    if kind == "tag":
        return _TAG_OPS
    attr_kind, lists = _ATTRIBUTES[target][key]
    if attr_kind == "number":
        return _NUMBER_OPS
    return _STRING_OPS if lists else _TAG_OPS


def parse_order_by(target: Target, items: list[str] | None) -> list[Order]:
    """``["name ASC", "last_updated_timestamp DESC"]`` → terms, tie-breakers appended.

    Raises:
        InvalidInput: an unknown key, a direction other than ASC/DESC, or a key twice.
    """
    out: list[Order] = []
    for item in items or []:
        parts = item.split()
        if not parts or len(parts) > 2:
            raise InvalidInput(f"invalid order_by clause {item!r}: use e.g. 'name ASC'")
        ascending = True
        if len(parts) == 2:
            if parts[1].upper() not in ("ASC", "DESC"):
                raise InvalidInput(
                    f"invalid order_by clause {item!r}: the direction must be ASC or DESC"
                )
            ascending = parts[1].upper() == "ASC"
        key = parts[0]
        prefix, dot, rest = key.partition(".")
        if dot and prefix.lower() in ("attribute", "attr", "attributes"):
            key = rest
        key = unquote(key)
        if key not in _ORDER_KEYS[target]:
            valid = ", ".join(_ORDER_KEYS[target])
            raise InvalidInput(f"invalid order_by key {key!r}: valid keys are {valid}")
        if any(o.key == key for o in out):
            raise InvalidInput(f"order_by names {key!r} twice: {items}")
        out.append(Order(key, ascending))
    if not any(o.key == "name" for o in out):
        out.append(Order("name", True))
    if target == "version" and not any(o.key == "version_number" for o in out):
        out.append(Order("version_number", False))
    return out


def check_max_results(target: Target, max_results: int) -> int:
    """``max_results`` if it is within MLflow's bounds for ``target``.

    Raises:
        InvalidInput: below 1 or above the threshold.
    """
    limit = MODEL_MAX_RESULTS if target == "model" else VERSION_MAX_RESULTS
    if not 1 <= max_results <= limit:
        raise InvalidInput(
            f"invalid value for max_results: it must be between 1 and {limit}, got {max_results}"
        )
    return max_results


# --- SQL ---------------------------------------------------------------------------------


def _glob_pattern(like: str) -> str:
    out = []
    for ch in like:
        out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch))
    return "".join(out)


def _compare(
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    comparator: str,
    value: str | int | tuple[str, ...],
    dialect: str,
) -> ColumnElement[bool]:
    if comparator in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        clause = column.in_(value)
        return clause if comparator == "IN" else not_(clause)
    if comparator == "LIKE":
        if dialect == "sqlite":  # SQLite's LIKE ignores case; GLOB does not
            return column.op("GLOB")(_glob_pattern(str(value)))
        return column.like(str(value))
    if comparator == "ILIKE":
        return column.ilike(str(value))
    ops = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    result: ColumnElement[bool] = ops[comparator](value)
    return result


def _prompt_default(clause: Clause) -> bool:
    return (clause.comparator == "=" and clause.value == "false") or (
        clause.comparator == "!=" and clause.value == "true"
    )


def model_conditions(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    """WHERE conditions on ``RegisteredModelRow`` for parsed model clauses."""

    def tag(key: str, condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
        query = select(RegisteredModelTagRow.model_id).where(
            RegisteredModelTagRow.model_id == RegisteredModelRow.id,
            RegisteredModelTagRow.key == key,
        )
        return exists(query if condition is None else query.where(condition))

    out: list[ColumnElement[bool]] = []
    for c in clauses:
        if c.kind == "attribute":
            out.append(_compare(RegisteredModelRow.name, c.comparator, c.value, dialect))
            continue
        matched = tag(c.key, _compare(RegisteredModelTagRow.value, c.comparator, c.value, dialect))
        if c.key == PROMPT_TAG and _prompt_default(c):
            matched = or_(matched, not_(tag(c.key, None)))
        out.append(matched)
    if not any(c.kind == "tag" and c.key == PROMPT_TAG for c in clauses):
        out.append(not_(tag(PROMPT_TAG, func.lower(RegisteredModelTagRow.value) == "true")))
    return out


def version_conditions(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    """WHERE conditions on ``ModelVersionRow`` joined to ``RegisteredModelRow``."""

    def tag(key: str, condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
        query = select(ModelVersionTagRow.version_id).where(
            ModelVersionTagRow.version_id == ModelVersionRow.id,
            ModelVersionTagRow.key == key,
        )
        return exists(query if condition is None else query.where(condition))

    columns: dict[str, InstrumentedAttribute[Any]] = {
        "name": RegisteredModelRow.name,
        "run_id": ModelVersionRow.source_run_id,
        "source_path": ModelVersionRow.source_uri,
    }
    out: list[ColumnElement[bool]] = []
    for c in clauses:
        if c.kind == "attribute" and c.key == "version_number":
            out.append(_compare(ModelVersionRow.version, c.comparator, c.value, dialect))
        elif c.kind == "attribute":
            column = columns[c.key]
            condition = _compare(column, c.comparator, c.value, dialect)
            if c.key == "run_id" and c.comparator in ("!=", "NOT IN"):
                condition = or_(condition, ModelVersionRow.source_run_id.is_(None))
            out.append(condition)
        else:
            value_cmp = _compare(ModelVersionTagRow.value, c.comparator, c.value, dialect)
            matched = tag(c.key, value_cmp)
            if c.key == PROMPT_TAG and _prompt_default(c):
                matched = or_(matched, not_(tag(c.key, None)))
            out.append(matched)
    if not any(c.kind == "tag" and c.key == PROMPT_TAG for c in clauses):
        out.append(not_(tag(PROMPT_TAG, func.lower(ModelVersionTagRow.value) == "true")))
    return out or [true()]


def model_ordering(orders: list[Order]) -> list[ColumnElement[Any]]:
    """ORDER BY terms on ``RegisteredModelRow``."""
    columns: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
        "name": RegisteredModelRow.name,
        "creation_timestamp": RegisteredModelRow.created_at_ms,
        "last_updated_timestamp": RegisteredModelRow.updated_at_ms,
    }
    return [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in orders]


def version_ordering(orders: list[Order]) -> list[ColumnElement[Any]]:
    """ORDER BY terms on ``ModelVersionRow`` joined to ``RegisteredModelRow``."""
    columns: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
        "name": RegisteredModelRow.name,
        "version_number": ModelVersionRow.version,
        "creation_timestamp": ModelVersionRow.created_at_ms,
        "last_updated_timestamp": func.coalesce(
            ModelVersionRow.updated_at_ms, ModelVersionRow.created_at_ms
        ),
    }
    return [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in orders]
