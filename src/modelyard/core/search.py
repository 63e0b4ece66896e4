"""MLflow's search grammar, parsed into a small AST that the SQL store compiles.

    metrics.auc > 0.9 and params.max_depth = '8' and tags.`team name` IN ('a', 'b')
    order_by: ["metrics.auc DESC", "attributes.start_time"]

Pure functions: no I/O. Errors name the offending token.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from modelyard.core.errors import InvalidInput


class Entity(enum.StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


ENTITY_PREFIXES = {
    "metrics": Entity.METRIC,
    "metric": Entity.METRIC,
    "params": Entity.PARAM,
    "param": Entity.PARAM,
    "parameters": Entity.PARAM,
    "parameter": Entity.PARAM,
    "tags": Entity.TAG,
    "tag": Entity.TAG,
    "attributes": Entity.ATTRIBUTE,
    "attribute": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}
# attribute name → (column kind); names in MLflow's spelling plus their aliases.
ATTRIBUTES = {
    "run_id": "string",
    "run_name": "string",
    "status": "string",
    "user_id": "string",
    "lifecycle_stage": "string",
    "start_time": "number",
    "end_time": "number",
    "created": "number",
    "experiment_id": "number",
}
ATTRIBUTE_ALIASES = {"created": "start_time", "run_uuid": "run_id", "user": "user_id"}
COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
_STRING_ONLY = {"LIKE", "ILIKE", "IN", "NOT IN"}
MAX_PAGE_OFFSET = 2**62  # beyond it a database cannot bind the OFFSET

# MLflow's filter grammar, shared by the run, registry and experiment searches: tokens
# of ``key <comparator> value [AND ...]`` with quoted strings, numbers and IN lists.
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<ident>(?:[A-Za-z_]\w*\.)?(?:`[^`]+`|"[^"]+"|[\w./:-]+))
    )""",
    re.VERBOSE,
)
KEYWORDS = frozenset({"AND", "OR", "LIKE", "ILIKE", "IN", "NOT"})
Token = tuple[str, str]  # (kind, text): string, number, op, lparen, rparen, comma, ident, keyword
T = TypeVar("T")


@dataclass(frozen=True)
class Comparison:
    entity: Entity
    key: str
    comparator: str
    value: str | float | tuple[str, ...]


@dataclass(frozen=True)
class OrderBy:
    entity: Entity
    key: str
    ascending: bool


def unquote(text: str) -> str:
    """``text`` without its surrounding quotes (', " or `) and backslash escapes."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _split_identifier(text: str) -> tuple[Entity, str]:
    prefix, dot, rest = text.partition(".")
    if dot and prefix.lower() in ENTITY_PREFIXES:
        entity, key = ENTITY_PREFIXES[prefix.lower()], unquote(rest)
    elif dot and prefix.startswith(("`", '"')):
        raise InvalidInput(f"invalid identifier {text!r}")
    else:
        entity, key = Entity.ATTRIBUTE, unquote(text)
    if not key:
        raise InvalidInput(f"invalid identifier {text!r}: the key is empty")
    if entity is Entity.ATTRIBUTE:
        key = ATTRIBUTE_ALIASES.get(key, key)
        if key not in ATTRIBUTES:
            known = ", ".join(sorted(ATTRIBUTES))
            raise InvalidInput(f"unknown attribute {key!r} in search: use one of {known}")
    return entity, key


def tokenize(text: str) -> list[Token]:
    """The tokens of a filter; keywords upper-cased, ``<>`` kept as written.

    Raises:
        InvalidInput: text that is no token, quoting where it stops.
    """
    out: list[Token] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidInput(f"invalid filter near {text[pos : pos + 20].strip()!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "ident" and value.upper() in KEYWORDS:
            kind, value = "keyword", value.upper()
        out.append((kind, value))
        pos = match.end()
    return out


def parse_conjunction(
    text: str | None, clause: Callable[[list[Token], int], tuple[T, int]]
) -> list[T]:
    """The clauses of ``text`` joined by AND, each parsed by ``clause(tokens, i)``, which
    returns the clause and the index after it. ``None`` or blank text is ``[]``.

    Raises:
        InvalidInput: OR (unsupported, as in MLflow), a missing AND, a trailing AND, or
            whatever ``clause`` refuses.
    """
    if text is None or not text.strip():
        return []
    tokens = tokenize(text)
    clauses: list[T] = []
    i = 0
    while i < len(tokens):
        found, i = clause(tokens, i)
        clauses.append(found)
        if i < len(tokens):
            kind, value = tokens[i]
            if (kind, value) == ("keyword", "OR"):
                raise InvalidInput(f"invalid filter {text!r}: OR is not supported, use AND")
            if (kind, value) != ("keyword", "AND"):
                raise InvalidInput(f"invalid filter {text!r}: expected AND, found {value!r}")
            i += 1
            if i == len(tokens):
                raise InvalidInput(f"invalid filter {text!r}: it ends with AND")
    return clauses


def comparator_at(tokens: list[Token], i: int, key: str) -> tuple[str, int]:
    """The comparator at ``tokens[i]`` (``NOT IN`` as one; ``<>`` as ``!=``) and the index
    after it.

    Raises:
        InvalidInput: no comparator there.
    """
    if i >= len(tokens):
        raise InvalidInput(f"expected a comparator after {key!r}")
    kind, value = tokens[i]
    if (kind, value) == ("keyword", "NOT") and i + 1 < len(tokens):
        if tokens[i + 1] != ("keyword", "IN"):
            raise InvalidInput(f"invalid comparator 'NOT {tokens[i + 1][1]}' after {key!r}")
        return "NOT IN", i + 2
    if kind == "op" or (kind == "keyword" and value in ("LIKE", "ILIKE", "IN")):
        return ("!=" if value == "<>" else value), i + 1
    raise InvalidInput(f"invalid comparator {value!r} after {key!r}")


def string_list_at(tokens: list[Token], i: int) -> tuple[tuple[str, ...], int]:
    """The quoted strings of the ``('a', 'b')`` list at ``tokens[i]`` and the index after.

    Raises:
        InvalidInput: no parenthesised list of quoted strings there.
    """
    if i >= len(tokens) or tokens[i][0] != "lparen":
        raise InvalidInput("IN needs a parenthesised list of quoted strings, like ('a', 'b')")
    i += 1
    values: list[str] = []
    while True:
        if i >= len(tokens) or tokens[i][0] != "string":
            raise InvalidInput("IN lists hold quoted strings, like ('a', 'b')")
        values.append(unquote(tokens[i][1]))
        i += 1
        if i < len(tokens) and tokens[i][0] == "comma":
            i += 1
            continue
        if i < len(tokens) and tokens[i][0] == "rparen":
            return tuple(values), i + 1
        raise InvalidInput("unclosed IN list")


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse ``text`` into comparisons joined by AND.

    Raises:
        InvalidInput: a syntax error, OR (unsupported, as in MLflow), an unknown
            attribute, or a value of the wrong type for its entity.
    """
    return parse_conjunction(text, _parse_clause)


def _parse_clause(tokens: list[Token], i: int) -> tuple[Comparison, int]:
    if tokens[i][0] != "ident":
        raise InvalidInput(f"expected an identifier like metrics.auc, found {tokens[i][1]!r}")
    entity, key = _split_identifier(tokens[i][1])
    comparator, i = comparator_at(tokens, i + 1, key)
    if comparator not in COMPARATORS:
        raise InvalidInput(f"invalid comparator {comparator!r} after {key!r}")
    if comparator in ("IN", "NOT IN"):
        values, i = string_list_at(tokens, i)
        return _typed(Comparison(entity, key, comparator, values)), i
    if i >= len(tokens) or tokens[i][0] not in ("string", "number"):
        raise InvalidInput(f"expected a value after {key!r} {comparator}")
    kind, raw = tokens[i]
    literal: str | float = float(raw) if kind == "number" else unquote(raw)
    return _typed(Comparison(entity, key, comparator, literal)), i + 1


def _typed(c: Comparison) -> Comparison:
    numeric = c.entity is Entity.METRIC or (
        c.entity is Entity.ATTRIBUTE and ATTRIBUTES[c.key] == "number"
    )
    if numeric:
        if c.comparator in _STRING_ONLY:
            raise InvalidInput(f"{c.comparator} does not apply to numeric {c.key!r}")
        if isinstance(c.value, str):
            try:
                return Comparison(c.entity, c.key, c.comparator, float(c.value))
            except ValueError:
                raise InvalidInput(f"{c.key!r} is numeric; {c.value!r} is not a number") from None
        return c
    if isinstance(c.value, float):
        raise InvalidInput(f"{c.key!r} compares as a string: quote the value")
    if c.comparator in ("<", "<=", ">", ">=") and c.entity is not Entity.ATTRIBUTE:
        raise InvalidInput(f"{c.comparator} does not apply to {c.entity.value} {c.key!r}")
    return c


def parse_order_by(items: list[str] | None) -> list[OrderBy]:
    """``["metrics.auc DESC", "params.lr"]`` → OrderBy terms (ascending by default)."""
    out: list[OrderBy] = []
    for item in items or []:
        text = item.strip()
        ascending = True
        upper = text.upper()
        if upper.endswith(" DESC"):
            text, ascending = text[:-5].strip(), False
        elif upper.endswith(" ASC"):
            text = text[:-4].strip()
        if not text:
            raise InvalidInput(f"invalid order_by {item!r}: use e.g. 'metrics.auc DESC'")
        entity, key = _split_identifier(text)
        out.append(OrderBy(entity, key, ascending))
    return out


def encode_page_token(offset: int) -> str:
    """MLflow's page token for ``offset`` (base64 of ``{"offset": N}``)."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset in ``token`` (0 when there is none).

    Raises:
        InvalidInput: the token is not one this server (or MLflow) hands out.
    """
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
        offset = data["offset"] if isinstance(data, dict) else None
        if isinstance(offset, str):
            offset = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError, KeyError):
        raise InvalidInput(f"invalid page_token {token!r}") from None
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise InvalidInput(f"invalid page_token {token!r}")
    if not 0 <= offset <= MAX_PAGE_OFFSET:
        raise InvalidInput(f"invalid page_token {token!r}")
    return offset
