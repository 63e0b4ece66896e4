"""Cache keys: what a step's output depends on, as one sha256.

The key covers the step's name and version, the digest of its code, the digests of its
inputs (upstream outputs) and its params. Two runs of a step with the same key produce
the same output, so the second can reuse the first's.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any


def code_digest(fn: Callable[..., Any]) -> str:
    """sha256 of the function's source; of its bytecode when the source is unavailable."""
    try:
        source = _without_decorators(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if not isinstance(code, CodeType):
            raise TypeError(f"{fn!r} has neither source nor bytecode") from None
        return hashlib.sha256(b"code:" + _code_bytes(code)).hexdigest()
    return hashlib.sha256(b"source:" + source.encode()).hexdigest()


def _without_decorators(source: str) -> str:
    """The source from its ``def`` line: the decorator's options (retries, resources)
    do not change what the function computes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a lambda cut out of a longer expression
        return source
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.FunctionDef | ast.AsyncFunctionDef) and first.decorator_list:
        return "\n".join(source.splitlines()[first.lineno - 1 :]) + "\n"
    return source


def _code_bytes(code: CodeType) -> bytes:
    """Bytecode, names and constants; nested code objects recursively (their repr has an
    address, which would change the digest from one process to the next)."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, CodeType) else repr(const).encode())
    return b"\0".join(parts)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces; values JSON cannot hold are written as repr."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def cache_key(
    name: str,
    version: str,
    code: str,
    inputs: Mapping[str, str],
    params: Mapping[str, Any],
) -> str:
    """The cache key of one step execution.

    Args:
        name: the step name.
        version: the step's declared version (bump it to invalidate the cache by hand).
        code: :func:`code_digest` of the step's function.
        inputs: parameter name → digest of the upstream output it receives.
        params: parameter name → value, for parameters fed by pipeline params or defaults.

    Returns:
        A sha256 hex digest.
    """
    document = {
        "step": name,
        "version": version,
        "code": code,
        "inputs": dict(inputs),
        "params": dict(params),
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()
