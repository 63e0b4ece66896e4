"""Loading ``path.py:attr`` and parsing ``--param``: every mistake named, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import cloudpickle  # type: ignore[import-untyped]
import pytest

from modelyard.cli._pipeline_cmds import parse_params
from modelyard.core.errors import InvalidInput
from modelyard.pipelines import Pipeline
from modelyard.pipelines.target import load_target, split_target

FLOW = """
import modelyard as my


@my.step
def ingest(rows: int = 3) -> list[int]:
    return list(range(rows))


pipeline = my.Pipeline([ingest], name="flow")


class Holder:
    inner = pipeline


answer = 42
"""


@pytest.fixture(autouse=True)
def _restore_import_state() -> Iterator[None]:
    """Loading a target changes sys.path, sys.modules and cloudpickle's registry."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("_modelyard_pipeline_"):  # only what load_target added
            cloudpickle.unregister_pickle_by_value(sys.modules.pop(name))


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return path


def test_loads_the_attribute_even_a_dotted_one(flow: Path) -> None:
    loaded = load_target(f"{flow}:pipeline")
    assert isinstance(loaded, Pipeline)
    assert loaded.name == "flow"
    assert load_target(f"{flow}:Holder.inner").name == "flow"


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":nothing", "has no attribute 'nothing' (pipelines in it: pipeline)"),
        (":answer", "flow.py:answer is a int, not a modelyard Pipeline"),
        ("", "expected path.py:attribute"),
        (":not-an-identifier", "expected path.py:attribute"),
    ],
)
def test_mistakes_in_the_target_are_named(flow: Path, suffix: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_target(f"{flow}{suffix}")
    assert message in raised.value.message


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_target(f"{tmp_path / 'absent.py'}:pipeline")
    broken = tmp_path / "broken.py"
    broken.write_text("import modelyard as my\n\n@my.step(retries=-1)\ndef f(x):\n    return x\n")
    with pytest.raises(InvalidInput, match="failed to import: InvalidInput: step 'f': retries"):
        load_target(f"{broken}:pipeline")
    (tmp_path / "syntax.py").write_text("def (:\n")
    with pytest.raises(InvalidInput, match="failed to import: SyntaxError"):
        load_target(f"{tmp_path / 'syntax.py'}:pipeline")


def test_split_target_keeps_colons_in_the_path() -> None:
    assert split_target("C:/work/flow.py:pipeline") == (Path("C:/work/flow.py"), "pipeline")


def test_params_are_json_values_or_text() -> None:
    assert parse_params(["lr=0.1", "depth=3", "name=rf", "flags=[1, 2]", "empty="]) == {
        "lr": 0.1,
        "depth": 3,
        "name": "rf",
        "flags": [1, 2],
        "empty": "",
    }
    assert parse_params(None) == {}
    with pytest.raises(InvalidInput, match="--param expects key=value, got 'lr'"):
        parse_params(["lr"])
    with pytest.raises(InvalidInput, match="--param 'lr' is given twice"):
        parse_params(["lr=1", "lr=2"])
