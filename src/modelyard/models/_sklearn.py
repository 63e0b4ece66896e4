"""The ``sklearn`` flavor: any scikit-learn estimator or Pipeline, pickled.

Loading unpickles ``model.pkl``, which runs code chosen by whoever wrote the file; the
package's digests are verified first (see :func:`modelyard.models.load_model`).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._base import Flavor, Predictor, SavedFlavor, as_output
from modelyard.models.manifest import VerifiedFiles
from modelyard.models.signature import Array, JSONValue

MODEL_FILE = "model.pkl"


def is_sklearn_estimator(model: object) -> bool:
    """Whether ``model`` is a scikit-learn estimator (a Pipeline included)."""
    try:
        from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


class SklearnPredictor:
    """Calls the estimator's ``predict``."""

    def __init__(self, model: object) -> None:
        self.model = model

    def predict(self, data: pd.DataFrame | Array) -> Array:
        """The estimator's ``predict(data)`` as an ndarray."""
        return as_output(self.model.predict(data))  # type: ignore[attr-defined]


class SklearnFlavor(Flavor):
    """Pickles the estimator into ``model.pkl`` (protocol 5)."""

    name: ClassVar[str] = "sklearn"
    distributions: ClassVar[tuple[str, ...]] = ("scikit-learn", "numpy", "pandas", "scipy")

    def accepts(self, model: object) -> bool:
        return is_sklearn_estimator(model)

    def save(self, model: object, dest: Path) -> SavedFlavor:
        if not is_sklearn_estimator(model):
            raise InvalidInput(
                f"flavor 'sklearn' needs a scikit-learn estimator, got {type(model).__name__}"
            )
        with open(dest / MODEL_FILE, "wb") as f:
            pickle.dump(model, f, protocol=5)
        cls = type(model)
        return SavedFlavor(
            config={
                "model_file": MODEL_FILE,
                "serialization_format": "pickle",
                "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
            }
        )

    def load(self, files: VerifiedFiles, config: Mapping[str, JSONValue]) -> Predictor:
        model_file = config.get("model_file", MODEL_FILE)
        if not isinstance(model_file, str):
            raise InvalidInput("sklearn flavor: 'model_file' must be a string")
        fmt = config.get("serialization_format", "pickle")
        return SklearnPredictor(load_pickle(files, model_file, fmt))


def load_pickle(files: VerifiedFiles, rel: str, fmt: object) -> object:
    """Unpickle a verified package file written with pickle or cloudpickle.

    Raises:
        InvalidInput: an unsupported serialization format (skops needs skops installed
            and is not read natively).
    """
    if fmt not in ("pickle", "cloudpickle", "joblib"):
        raise InvalidInput(f"unsupported serialization format {fmt!r} for {rel!r}")
    data = files.read_bytes(rel)
    if fmt == "joblib":
        import io

        import joblib  # type: ignore[import-untyped]

        return joblib.load(io.BytesIO(data))  # digest verified just above
    # cloudpickle output is ordinary pickle data that needs cloudpickle only if it
    # references it; pickle.loads handles both.
    return pickle.loads(data)  # noqa: S301 - digest verified just above
