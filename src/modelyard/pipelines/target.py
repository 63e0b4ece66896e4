"""Loading a pipeline from ``path.py:attribute`` (what ``modelyard pipeline run`` takes)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from modelyard.core.errors import InvalidInput
from modelyard.pipelines._pipeline import Pipeline


def split_target(target: str) -> tuple[Path, str]:
    """``path.py:attr`` (or ``path.py:obj.attr``) → (path, attr).

    Raises:
        InvalidInput: no ``:``, or an empty path or attribute.
    """
    path, sep, attr = target.rpartition(":")
    if not sep or not path or not all(part.isidentifier() for part in attr.split(".")):
        raise InvalidInput(
            f"target {target!r}: expected path.py:attribute, e.g. pipeline.py:pipeline"
        )
    return Path(path), attr


def load_target(target: str) -> Pipeline:
    """Import the file as a module and return its attribute, which must be a Pipeline.

    The file's directory goes first on ``sys.path`` (as for ``python path.py``), so it
    can import its neighbours; its functions are pickled by value, so workers that
    cannot import the file still run its steps.

    Raises:
        InvalidInput: a missing file, a file that fails to import, a missing attribute,
            or an attribute that is not a :class:`Pipeline`.
    """
    path, attr = split_target(target)
    if not path.is_file():
        raise InvalidInput(f"pipeline file {str(path)!r} does not exist")
    module = _import_file(path)
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            found = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
            hint = f"pipelines in it: {', '.join(found)}" if found else "it defines no Pipeline"
            raise InvalidInput(f"{path} has no attribute {attr!r} ({hint})")
        value = getattr(value, part)
    if not isinstance(value, Pipeline):
        raise InvalidInput(f"{target} is a {type(value).__name__}, not a modelyard Pipeline")
    return value


def _import_file(path: Path) -> Any:
    resolved = path.resolve()
    name = f"_modelyard_pipeline_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        detail = f"{type(exc).__name__}: {exc}"
        raise InvalidInput(f"{path} failed to import: {detail}") from exc
    cloudpickle.register_pickle_by_value(module)
    return module
