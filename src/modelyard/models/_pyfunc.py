"""The ``pyfunc`` flavor: an instance of a user class with ``predict(self, data)``.

The instance is saved with cloudpickle when it is installed (so classes defined in
``__main__`` or a notebook travel by value), else with pickle (then the class must be
importable, under the same module path, wherever the model is loaded). If the class
has ``load_context(self, context)``, it is called once after loading with a
:class:`PythonModelContext`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._base import Flavor, Predictor, SavedFlavor, as_output
from modelyard.models._sklearn import load_pickle
from modelyard.models.manifest import VerifiedFiles
from modelyard.models.signature import Array, JSONValue

MODEL_FILE = "python_model.pkl"


@dataclass(frozen=True)
class PythonModelContext:
    """Passed to ``load_context``: where the package lies on disk (read-only)."""

    model_dir: Path


class PyfuncPredictor:
    """Calls the user object's ``predict``."""

    def __init__(self, model: object) -> None:
        self.model = model

    def predict(self, data: pd.DataFrame | Array) -> Array:
        """The object's ``predict(data)``, converted with ``numpy.asarray``."""
        return as_output(self.model.predict(data))  # type: ignore[attr-defined]


class PyfuncFlavor(Flavor):
    """Pickles a user object that has a ``predict`` method."""

    name: ClassVar[str] = "pyfunc"
    distributions: ClassVar[tuple[str, ...]] = ("cloudpickle", "numpy", "pandas")

    def accepts(self, model: object) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: object, dest: Path) -> SavedFlavor:
        if not self.accepts(model):
            raise InvalidInput(
                f"flavor 'pyfunc' needs an object with a predict method, got {type(model).__name__}"
            )
        try:
            import cloudpickle  # type: ignore[import-untyped]

            dump, fmt = cloudpickle.dump, "cloudpickle"
        except ImportError:
            dump, fmt = pickle.dump, "pickle"
        try:
            with open(dest / MODEL_FILE, "wb") as f:
                dump(model, f, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"cannot pickle the pyfunc model with {fmt}: {exc}") from exc
        cls = type(model)
        return SavedFlavor(
            config={
                "model_file": MODEL_FILE,
                "serialization_format": fmt,
                "python_class": f"{cls.__module__}.{cls.__qualname__}",
            }
        )

    def load(self, files: VerifiedFiles, config: Mapping[str, JSONValue]) -> Predictor:
        model_file = config.get("model_file", MODEL_FILE)
        if not isinstance(model_file, str):
            raise InvalidInput("pyfunc flavor: 'model_file' must be a string")
        model = load_pickle(files, model_file, config.get("serialization_format", "pickle"))
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context(PythonModelContext(model_dir=files.root))
        return PyfuncPredictor(model)
