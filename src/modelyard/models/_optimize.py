"""Converting an sklearn package to ONNX, accepted only when predictions match.

The converted model takes one float32 tensor (skl2onnx, ``zipmap=False`` for
classifiers). It is compared with the original on the stored input example and on
``n_random_rows`` rows drawn (seeded) uniformly within each column's min/max in the
example. Classifiers must give the same labels and, where both sides have them,
probabilities within tolerance; regressors values within tolerance. A value passes when
``|onnx - original| <= atol + rtol * |original|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._package import load_model, write_package
from modelyard.models._sklearn import SklearnPredictor
from modelyard.models._validate import conform
from modelyard.models.manifest import ModelManifest
from modelyard.models.signature import (
    NUMERIC_DTYPES,
    Array,
    ColumnSchema,
    Schema,
    Signature,
    TensorSchema,
)


@dataclass(frozen=True)
class OptimizeReport:
    """What :func:`optimize_to_onnx` compared, and the package it wrote."""

    manifest: ModelManifest
    task: str
    rtol: float
    atol: float
    seed: int
    n_example_rows: int
    n_random_rows: int
    max_abs_diff: float

    @property
    def n_compared(self) -> int:
        """How many rows were compared in all."""
        return self.n_example_rows + self.n_random_rows

    def summary(self) -> str:
        """One line for people: what matched, under which tolerance."""
        return (
            f"{self.task}: ONNX predictions match on all {self.n_compared} rows "
            f"({self.n_example_rows} example + {self.n_random_rows} generated, seed "
            f"{self.seed}) within rtol={self.rtol:g}, atol={self.atol:g}; max abs diff "
            f"{self.max_abs_diff:.3g}"
        )


@dataclass(frozen=True)
class _Outputs:
    labels_or_values: Array
    probabilities: Array | None


def optimize_to_onnx(
    package: Path,
    dest: Path,
    *,
    n_random_rows: int = 1000,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    seed: int = 0,
) -> OptimizeReport:
    """Convert an sklearn package to an ONNX package at ``dest`` if predictions match.

    Args:
        package: A verified-on-load ``sklearn`` package with an input example.
        dest: Where the ONNX package is written (only when everything matches).
        n_random_rows: How many generated rows to compare besides the example.
        rtol: Relative tolerance for values and probabilities.
        atol: Absolute tolerance for values and probabilities.
        seed: Seed of the row generator.

    Returns:
        The report; ``report.manifest`` is the new package's manifest.

    Raises:
        InvalidInput: the package is not sklearn, has no example or non-numeric inputs,
            skl2onnx cannot convert it, or the predictions differ; the message says how
            many rows differ, the largest difference, and gives an example row.
        IntegrityError: the source package fails verification.
    """
    if n_random_rows < 0 or rtol < 0 or atol < 0:
        raise InvalidInput("n_random_rows, rtol and atol must be >= 0")
    loaded = load_model(package)
    predictor = loaded.predictor
    example = loaded.input_example()
    if not isinstance(predictor, SklearnPredictor):
        raise InvalidInput(f"optimize converts sklearn packages; this one is {loaded.flavor!r}")
    if example is None or loaded.signature is None:
        raise InvalidInput("optimize needs the package's input example (save with input_example)")
    schema = loaded.signature.inputs
    n_features = _check_numeric(schema)
    example_in = conform(example, schema)
    rows = _generate(example_in, schema, n_random_rows, seed)
    both: pd.DataFrame | Array
    if isinstance(rows, pd.DataFrame) and isinstance(example_in, pd.DataFrame):
        both = pd.concat([example_in, rows], ignore_index=True)
    else:
        both = np.vstack([np.asarray(example_in), np.asarray(rows)])
    model = predictor.model
    is_classifier = _is_classifier(model)
    onnx_bytes = _convert(model, n_features, is_classifier)
    want = _original_outputs(model, both, is_classifier)
    got = _onnx_outputs(onnx_bytes, both, want.labels_or_values.shape)
    n_example = len(example_in)
    max_diff = _compare(want, got, both, n_example, is_classifier, rtol, atol)
    manifest = write_package(
        onnx_bytes,
        dest,
        flavor="onnx",
        input_example=example,
        signature=Signature(schema, loaded.signature.outputs),
        source_run=loaded.manifest.source_run,
        extra_config={"converted_from": dict(loaded.manifest.digests())},
    )
    return OptimizeReport(
        manifest=manifest,
        task="classifier" if is_classifier else "regressor",
        rtol=rtol,
        atol=atol,
        seed=seed,
        n_example_rows=n_example,
        n_random_rows=n_random_rows,
        max_abs_diff=max_diff,
    )


def _check_numeric(schema: Schema) -> int:
    if isinstance(schema, TensorSchema):
        if len(schema.shape) != 2 or schema.shape[1] < 1 or schema.dtype not in NUMERIC_DTYPES:
            raise InvalidInput(
                f"optimize needs a 2-D numeric input with a fixed number of features, got "
                f"{schema.dtype} of shape {list(schema.shape)}"
            )
        return schema.shape[1]
    bad = [c.name for c in schema.columns if c.dtype not in NUMERIC_DTYPES | {"bool"}]
    if bad:
        raise InvalidInput(f"optimize supports numeric columns only; column {bad[0]!r} is not")
    return len(schema.columns)


def _generate(
    example: pd.DataFrame | Array, schema: Schema, n_rows: int, seed: int
) -> pd.DataFrame | Array:
    rng = np.random.default_rng(seed)
    matrix = np.asarray(example, dtype=np.float64)
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    dtypes = (
        [c.dtype for c in schema.columns]
        if isinstance(schema, ColumnSchema)
        else [schema.dtype] * matrix.shape[1]
    )
    columns: list[Array] = []
    for j, dtype in enumerate(dtypes):
        if dtype == "bool" or np.dtype(dtype).kind in "iu":
            columns.append(rng.integers(int(low[j]), int(high[j]) + 1, size=n_rows))
        else:
            columns.append(rng.uniform(low[j], high[j], size=n_rows))
    if isinstance(schema, TensorSchema):
        return np.column_stack(columns).astype(schema.dtype) if columns else matrix[:0]
    return pd.DataFrame(
        {c.name: col.astype(c.dtype) for c, col in zip(schema.columns, columns, strict=True)}
    )


def _is_classifier(model: object) -> bool:
    from sklearn.base import is_classifier  # type: ignore[import-untyped]

    return bool(is_classifier(model))


def _convert(model: object, n_features: int, is_classifier: bool) -> bytes:
    try:
        from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
        from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]
    except ImportError as exc:
        raise InvalidInput("optimize --to onnx needs skl2onnx: install modelyard[onnx]") from exc
    steps = getattr(model, "steps", None)
    final = steps[-1][1] if isinstance(steps, list) and steps else model
    options = {id(final): {"zipmap": False}} if is_classifier else None
    try:
        onx = convert_sklearn(
            model, initial_types=[("X", FloatTensorType([None, n_features]))], options=options
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        raise InvalidInput(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc
    return bytes(onx.SerializeToString())


def _original_outputs(model: object, data: pd.DataFrame | Array, is_classifier: bool) -> _Outputs:
    values = np.asarray(model.predict(data))  # type: ignore[attr-defined]
    proba = None
    if is_classifier and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(data))
    return _Outputs(values, proba)


def _onnx_outputs(
    onnx_bytes: bytes, data: pd.DataFrame | Array, shape: tuple[int, ...]
) -> _Outputs:
    import onnxruntime  # type: ignore[import-untyped]

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = dict(
        zip(names, session.run(None, {"X": np.asarray(data, dtype=np.float32)}), strict=True)
    )
    main = np.asarray(results.get("label", results[names[0]]))
    proba = results.get("probabilities")
    return _Outputs(main.reshape(shape), None if proba is None else np.asarray(proba))


def _compare(
    want: _Outputs,
    got: _Outputs,
    data: pd.DataFrame | Array,
    n_example: int,
    is_classifier: bool,
    rtol: float,
    atol: float,
) -> float:
    n = len(data)
    diff: npt.NDArray[np.float64] = np.zeros(n)
    if is_classifier:
        labels_differ = np.asarray(want.labels_or_values != got.labels_or_values)
        bad_rows = np.asarray(labels_differ.reshape(n, -1).any(axis=1), dtype=np.bool_)
        if want.probabilities is not None and got.probabilities is not None:
            diff, close = _diff(want.probabilities, got.probabilities, rtol, atol)
            bad_rows = bad_rows | ~close
        what = "labels or probabilities"
    else:
        diff, close = _diff(want.labels_or_values, got.labels_or_values, rtol, atol)
        bad_rows = ~close
        what = "values"
    max_diff = float(diff.max()) if diff.size else 0.0
    if bool(bad_rows.any()):
        first = int(np.argmax(bad_rows))
        row = data.iloc[first].to_dict() if isinstance(data, pd.DataFrame) else data[first].tolist()
        raise InvalidInput(
            f"the ONNX conversion does not match the original: {what} differ on "
            f"{int(bad_rows.sum())} of {n} rows ({int(bad_rows[:n_example].sum())} "
            f"of the {n_example} example rows) within rtol={rtol:g}, atol={atol:g}; max abs "
            f"diff {max_diff:.3g}; e.g. row {first} {row}: original "
            f"{np.asarray(want.labels_or_values[first]).tolist()!r}, onnx "
            f"{np.asarray(got.labels_or_values[first]).tolist()!r}"
        )
    return max_diff


def _diff(
    want: Array, got: Array, rtol: float, atol: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per row: the largest absolute difference, and whether every value is close."""
    a = np.asarray(want, dtype=np.float64).reshape(len(want), -1)
    b = np.asarray(got, dtype=np.float64).reshape(len(want), -1)
    diff = np.abs(a - b)
    close = np.asarray((diff <= atol + rtol * np.abs(a)).all(axis=1), dtype=np.bool_)
    return diff.max(axis=1), close
