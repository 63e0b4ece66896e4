"""Cache keys change with code, version, inputs and params, and with nothing else."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from modelyard.pipelines._cache import cache_key, canonical_json, code_digest

BASE = {
    "name": "train",
    "version": "1",
    "code": "c0de",
    "inputs": {"featurize": "artifact:abc"},
    "params": {"lr": 0.1, "depth": 3},
}


def _key(**changes: object) -> str:
    fields: dict[str, object] = {**BASE, **changes}
    return cache_key(
        fields["name"],  # type: ignore[arg-type]
        fields["version"],  # type: ignore[arg-type]
        fields["code"],  # type: ignore[arg-type]
        fields["inputs"],  # type: ignore[arg-type]
        fields["params"],  # type: ignore[arg-type]
    )


def test_every_ingredient_changes_the_key() -> None:
    base = _key()
    assert _key() == base  # deterministic
    assert _key(name="evaluate") != base
    assert _key(version="2") != base
    assert _key(code="c0dd") != base
    assert _key(inputs={"featurize": "artifact:abd"}) != base
    assert _key(inputs={"other": "artifact:abc"}) != base
    assert _key(params={"lr": 0.2, "depth": 3}) != base
    assert _key(params={"lr": 0.1, "depth": 3, "seed": 0}) != base
    assert _key(params={"lr": "0.1", "depth": 3}) != base  # a string is not a float


def test_param_order_does_not_matter() -> None:
    assert _key(params={"depth": 3, "lr": 0.1}) == _key()


jsonish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    a=st.dictionaries(st.text(max_size=6), jsonish, max_size=4),
    b=st.dictionaries(st.text(max_size=6), jsonish, max_size=4),
)
def test_keys_are_equal_exactly_when_params_are(a: dict[str, object], b: dict[str, object]) -> None:
    same = canonical_json(a) == canonical_json(b)
    assert (_key(params=a) == _key(params=b)) == same


def _source_a(x: int) -> int:
    return x + 1


def _source_b(x: int) -> int:
    return x + 2


def _load(path: Path, source: str) -> Any:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_digest_follows_the_source_not_the_decorator(tmp_path: Path) -> None:
    assert code_digest(_source_a) == code_digest(_source_a)
    assert code_digest(_source_a) != code_digest(_source_b)
    body = "def train(x):\n    return x * {}\n"
    head = "import modelyard as my\n\n\n"
    one = _load(tmp_path / "one.py", head + "@my.step(retries=1)\n" + body.format(2))
    two = _load(
        tmp_path / "two.py",
        head + "@my.step(\n    retries=5,\n    backoff_s=0.1,\n)\n" + body.format(2),
    )
    three = _load(tmp_path / "three.py", head + "@my.step(retries=1)\n" + body.format(3))
    assert code_digest(one.train.fn) == code_digest(two.train.fn)  # options differ only
    assert code_digest(one.train.fn) != code_digest(three.train.fn)  # the code differs


def _generated(source: str) -> types.FunctionType:
    """A function whose source no file holds (as made by a notebook or a template)."""
    module = compile(source, "<generated>", "exec")
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(code, {})


def test_code_digest_falls_back_to_bytecode() -> None:
    made = _generated("def made(x):\n    return x + 1\n")
    again = _generated("def made(x):\n    return x + 1\n")
    other = _generated("def made(x):\n    return x + 2\n")
    nested = _generated("def made(x):\n    return (lambda y: y + 1)(x)\n")
    assert code_digest(made) == code_digest(again)
    assert code_digest(made) != code_digest(other)
    assert code_digest(nested) == code_digest(
        _generated("def made(x):\n    return (lambda y: y + 1)(x)\n")
    )
