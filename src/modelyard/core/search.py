"""MLflow's search grammar, parsed into a small AST that the SQL store compiles.

    metrics.auc > 0.9 and params.max_depth = '8' and tags.`team name` IN ('a', 'b')
    order_by: ["metrics.auc DESC", "attributes.start_time"]

Pure functions: no I/O. Errors name the offending token.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass

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

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<ident>(?:[A-Za-z_][\w]*\.)?(?:`[^`]+`|"[^"]+"|[\w./:-]+))
    )""",
    re.VERBOSE,
)


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


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _split_identifier(text: str) -> tuple[Entity, str]:
    prefix, dot, rest = text.partition(".")
    if dot and prefix.lower() in ENTITY_PREFIXES:
        entity, key = ENTITY_PREFIXES[prefix.lower()], _unquote(rest)
    elif dot and prefix.startswith(("`", '"')):
        raise InvalidInput(f"invalid identifier {text!r}")
    else:
        entity, key = Entity.ATTRIBUTE, _unquote(text)
    if not key:
        raise InvalidInput(f"invalid identifier {text!r}: the key is empty")
    if entity is Entity.ATTRIBUTE:
        key = ATTRIBUTE_ALIASES.get(key, key)
        if key not in ATTRIBUTES:
            known = ", ".join(sorted(ATTRIBUTES))
            raise InvalidInput(f"unknown attribute {key!r} in search: use one of {known}")
    return entity, key


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidInput(f"invalid filter near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "ident" and value.upper() in ("AND", "LIKE", "ILIKE", "IN", "NOT", "OR"):
            kind = "keyword"
            value = value.upper()
        out.append((kind, value))
        pos = match.end()
    return out


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse ``text`` into comparisons joined by AND.

    Raises:
        InvalidInput: a syntax error, OR (unsupported, as in MLflow), an unknown
            attribute, or a value of the wrong type for its entity.
    """
    if text is None or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Comparison] = []
    i = 0
    while i < len(tokens):
        clause, i = _parse_clause(tokens, i)
        clauses.append(clause)
        if i < len(tokens):
            kind, value = tokens[i]
            if (kind, value) == ("keyword", "OR"):
                raise InvalidInput("OR is not supported in search filters; use AND")
            if (kind, value) != ("keyword", "AND"):
                raise InvalidInput(f"expected AND between conditions, found {value!r}")
            i += 1
            if i == len(tokens):
                raise InvalidInput("filter ends with AND")
    return clauses


def _parse_clause(tokens: list[tuple[str, str]], i: int) -> tuple[Comparison, int]:
    if i >= len(tokens) or tokens[i][0] != "ident":
        found = tokens[i][1] if i < len(tokens) else "end of filter"
        raise InvalidInput(f"expected an identifier like metrics.auc, found {found!r}")
    entity, key = _split_identifier(tokens[i][1])
    i += 1
    if i >= len(tokens):
        raise InvalidInput(f"expected a comparator after {key!r}")
    kind, value = tokens[i]
    if (kind, value) == ("keyword", "NOT") and i + 1 < len(tokens) and tokens[i + 1][1] == "IN":
        comparator, i = "NOT IN", i + 2
    elif kind in ("op", "keyword") and value in COMPARATORS:
        comparator, i = value, i + 1
    else:
        raise InvalidInput(f"invalid comparator {value!r} after {key!r}")
    if comparator in ("IN", "NOT IN"):
        values, i = _parse_list(tokens, i)
        return _typed(Comparison(entity, key, comparator, values)), i
    if i >= len(tokens) or tokens[i][0] not in ("string", "number"):
        raise InvalidInput(f"expected a value after {key!r} {comparator}")
    kind, raw = tokens[i]
    literal: str | float = float(raw) if kind == "number" else _unquote(raw)
    return _typed(Comparison(entity, key, comparator, literal)), i + 1


def _parse_list(tokens: list[tuple[str, str]], i: int) -> tuple[tuple[str, ...], int]:
    if i >= len(tokens) or tokens[i][0] != "lparen":
        raise InvalidInput("IN needs a parenthesised list like ('a', 'b')")
    i += 1
    values: list[str] = []
    while True:
        if i >= len(tokens) or tokens[i][0] != "string":
            raise InvalidInput("IN lists hold quoted strings")
        values.append(_unquote(tokens[i][1]))
        i += 1
        if i < len(tokens) and tokens[i][0] == "comma":
            i += 1
            continue
        if i < len(tokens) and tokens[i][0] == "rparen":
            return tuple(values), i + 1
        raise InvalidInput("unclosed IN list")


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
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"invalid page_token {token!r}") from None
    if kind != "offset" or not 0 <= offset <= MAX_PAGE_OFFSET:
        raise InvalidInput(f"invalid page_token {token!r}")
    return offset
