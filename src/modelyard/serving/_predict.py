"""Choosing the cheapest call that gives a model's exact predictions on an array.

The fast path hands the model a validated ndarray. Models that need named columns get a
DataFrame built from it. A scikit-learn estimator fitted on a DataFrame whose
``feature_names_in_`` are exactly the signature's columns, in order, and all of one
dtype, predicts the same on the bare array — only slower on the DataFrame (pandas
validation costs ~0.7 ms per call here against ~0.15 ms for the array). That shortcut is
taken only after both calls gave identical predictions on the package's input example;
the "X does not have valid feature names" warning it causes is silenced in the serving
process (that message only).

Plain scikit-learn linear models (``LogisticRegression``, ``RidgeClassifier``,
``SGDClassifier``, ``LinearRegression``, ``Ridge`` ... whose ``predict`` is the library's
own ``LinearClassifierMixin``/``LinearModel`` one) are called through the same
arithmetic sklearn runs — ``rows @ coef_.T + intercept_``, then the sign or the argmax
into ``classes_`` — without its per-call input checks (~0.1 ms per call here, more than
the arithmetic of a 64-row batch). The rows were already checked against the signature.
This path, too, is only taken after it gave exactly the estimator's own predictions on
the input example and on random rows.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

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
    linear = _linear_predict(model, spec)
    if linear is not None:
        return linear
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


def _linear_predict(model: LoadedModel, spec: InputSpec | None) -> Callable[[Array], Array] | None:
    """sklearn's own linear ``predict`` arithmetic, when it is verified to be exact."""
    inner = getattr(model.predictor, "model", None)
    if spec is None or model.flavor not in ("sklearn", "mlflow") or inner is None:
        return None
    try:
        from sklearn.linear_model._base import (  # type: ignore[import-untyped]
            LinearClassifierMixin,
            LinearModel,
        )
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return None
    cls = type(inner)
    classifier = (
        getattr(cls, "predict", None) is LinearClassifierMixin.predict
        and getattr(cls, "decision_function", None) is LinearClassifierMixin.decision_function
    )
    # sklearn's own regressors re-declare predict only for its docstring
    # (``return super().predict(X)``); a user's subclass must not override it.
    regressor = getattr(cls, "_decision_function", None) is getattr(
        LinearModel, "_decision_function", None
    ) and (
        getattr(cls, "predict", None) is LinearModel.predict
        or (cls.__module__.startswith("sklearn.") and issubclass(cls, LinearModel))
    )
    coef = getattr(inner, "coef_", None)
    intercept: Any = getattr(inner, "intercept_", 0.0)
    classes = getattr(inner, "classes_", None) if classifier else None
    if not (classifier or regressor) or not isinstance(coef, np.ndarray) or coef.ndim > 2:
        return None
    if classifier and not isinstance(classes, np.ndarray):
        return None
    if coef.shape[-1] != spec.width or spec.dtype.kind not in "fiub":
        return None
    coef_t = coef.T if coef.ndim == 2 else coef

    def scores(rows: Array) -> Array:
        if rows.dtype != np.float64 and rows.dtype != np.float32:
            rows = rows.astype(np.float64)
        return np.asarray(rows @ coef_t + intercept)

    def predict_classes(rows: Array) -> Array:
        values = scores(rows)
        if values.ndim > 1 and values.shape[1] == 1:
            values = values.reshape(-1)
        index = np.greater(values, 0).astype(np.intp) if values.ndim == 1 else values.argmax(axis=1)
        return np.asarray(classes.take(index, axis=0))  # type: ignore[union-attr]

    fast = predict_classes if classifier else scores
    return fast if _same_as_estimator(model, spec, fast) else None


def _same_as_estimator(model: LoadedModel, spec: InputSpec, fast: Callable[[Array], Array]) -> bool:
    """Whether ``fast`` gives exactly the estimator's predictions on the input example
    (when there is one) and on 64 random rows."""
    inner = model.predictor.model  # type: ignore[attr-defined]
    width = spec.width
    samples = [np.random.default_rng(0).normal(size=(64, width)).astype(spec.dtype)]
    example = model.input_example()
    if example is not None:
        values = example.to_numpy() if hasattr(example, "to_numpy") else example
        samples.append(np.asarray(values).astype(spec.dtype))
    named = getattr(inner, "feature_names_in_", None) is not None and spec.names is not None
    try:
        for rows in samples:
            given: object = rows
            if named:  # as the frame path would call it, in the signature's column order
                import pandas as pd

                given = pd.DataFrame(rows, columns=list(spec.names or ()))
            if not np.array_equal(np.asarray(inner.predict(given)), fast(rows)):
                return False
    except Exception:  # the fast path is only an optimisation
        logger.debug("the linear fast path failed its check", exc_info=True)
        return False
    return True
