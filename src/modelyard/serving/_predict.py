"""Choosing the cheapest call that gives a model's exact predictions on an array.

The fast path hands the model a validated ndarray. Models that need named columns get a
DataFrame built from it. A scikit-learn estimator fitted on a DataFrame whose
``feature_names_in_`` are exactly the signature's columns, in order, and all of one
dtype, predicts the same on the bare array — only slower on the DataFrame (pandas
validation costs ~0.7 ms per call here against ~0.15 ms for the array). That shortcut is
taken only after both calls gave identical predictions on the package's input example;
the "X does not have valid feature names" warning it causes is silenced in the serving
process (that message only).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np

from modelyard.serving._inputs import InputSpec
from modelyard.serving._types import Array

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelyard.models import LoadedModel

logger = logging.getLogger("modelyard.serving")
_NO_NAMES = "X does not have valid feature names"


def array_predict(model: LoadedModel, spec: InputSpec | None) -> Callable[[Array], Array]:
    """The function the runtime calls with a validated array of rows.

    Args:
        model: The loaded package.
        spec: The fast-path input spec, or None (then the flavor's predictor as is).

    Returns:
        A function from rows to one prediction per row.
    """
    predictor = model.predictor
    if spec is None or spec.names is None or not _needs_frame(model):
        return predictor.predict
    frame_predict = _frame_predict(model, spec)
    if _array_equivalent(model, spec, frame_predict):
        return predictor.predict
    return frame_predict


def _frame_predict(model: LoadedModel, spec: InputSpec) -> Callable[[Array], Array]:
    import pandas as pd  # already imported by the flavors that need a DataFrame

    predictor = model.predictor
    names = list(spec.names or ())
    dtypes = [np.dtype(d) for d in spec.column_dtypes]
    uniform = all(d == spec.dtype for d in dtypes)

    def predict(rows: Array) -> Array:
        if uniform:
            frame = pd.DataFrame(rows, columns=names, copy=False)
        else:
            frame = pd.DataFrame({n: rows[:, j].astype(dtypes[j]) for j, n in enumerate(names)})
        return predictor.predict(frame)

    return predict


def _needs_frame(model: LoadedModel) -> bool:
    predictor = model.predictor
    session = getattr(predictor, "session", None)
    if session is not None:  # ONNX: a single input takes the array as is
        return len(session.get_inputs()) != 1
    inner = getattr(predictor, "model", None)
    if model.flavor in ("sklearn", "mlflow") and inner is not None:
        return hasattr(inner, "feature_names_in_") or not hasattr(inner, "n_features_in_")
    return True


def _array_equivalent(
    model: LoadedModel, spec: InputSpec, frame_predict: Callable[[Array], Array]
) -> bool:
    inner = getattr(model.predictor, "model", None)
    names = getattr(inner, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != list(spec.names or ()):
        return False
    if any(np.dtype(d) != spec.dtype for d in spec.column_dtypes):
        return False
    example = model.input_example()
    if example is None:
        return False
    rows = np.asarray(example.to_numpy() if hasattr(example, "to_numpy") else example)
    rows = rows.astype(spec.dtype)
    warnings.filterwarnings("ignore", message=_NO_NAMES, category=UserWarning)
    try:
        same = np.array_equal(model.predictor.predict(rows), frame_predict(rows))
    except Exception:  # the array path is only an optimisation
        logger.debug("the array shortcut failed on the input example", exc_info=True)
        return False
    return bool(same)
