"""Signatures: inference from examples, JSON round trip, and validating inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from modelyard.core.errors import InvalidInput
from modelyard.models import (
    ColumnSchema,
    ColumnSpec,
    Signature,
    TensorSchema,
    conform,
    infer_schema,
)


def test_frame_infers_named_typed_columns() -> None:
    frame = pd.DataFrame(
        {"age": [1, 2], "score": [0.5, 1.5], "ok": [True, False], "city": ["a", "b"]}
    )
    assert infer_schema(frame) == ColumnSchema(
        (
            ColumnSpec("age", "int64"),
            ColumnSpec("score", "float64"),
            ColumnSpec("ok", "bool"),
            ColumnSpec("city", "string"),
        )
    )


def test_ndarray_infers_tensor_with_variable_batch() -> None:
    assert infer_schema(np.zeros((5, 3, 2), dtype=np.float32)) == TensorSchema(
        "float32", (-1, 3, 2)
    )


def test_records_and_column_dicts_infer_columns() -> None:
    expected = ColumnSchema((ColumnSpec("a", "int64"), ColumnSpec("b", "float64")))
    assert infer_schema([{"a": 1, "b": 2.0}, {"a": 3, "b": 4.5}]) == expected
    assert infer_schema({"a": [1, 3], "b": [2.0, 4.5]}) == expected


def test_unsupported_example_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot infer a signature from int"):
        infer_schema(3)


def test_signature_json_round_trip() -> None:
    sig = Signature(
        ColumnSchema((ColumnSpec("a", "int64"), ColumnSpec("b", "string"))),
        TensorSchema("float32", (-1, 2)),
    )
    assert Signature.from_json(sig.to_json()) == sig
    assert Signature.from_json(Signature(sig.outputs).to_json()).outputs is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "expected an object with 'inputs'"),
        ({"inputs": {"type": "table"}}, "invalid signature schema type 'table'"),
        ({"inputs": {"type": "tensor", "dtype": "float64", "shape": [-2]}}, "invalid tensor shape"),
        ({"inputs": {"type": "tensor", "dtype": "complex", "shape": [-1]}}, "invalid dtype"),
        ({"inputs": {"type": "columns", "columns": [{"dtype": "int64"}]}}, "needs a string 'name'"),
    ],
)
def test_malformed_signature_json_is_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Signature.from_json(doc)


COLUMNS = ColumnSchema((ColumnSpec("a", "float64"), ColumnSpec("b", "int64")))


def test_columns_are_reordered_cast_and_extras_dropped() -> None:
    frame = pd.DataFrame({"extra": ["x"], "b": [np.int32(2)], "a": [1]})
    out = conform(frame, COLUMNS)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["a", "b"]
    assert out.dtypes.astype(str).tolist() == ["float64", "int64"]


def test_every_input_form_gives_the_same_frame() -> None:
    want = pd.DataFrame({"a": [1.0, 3.0], "b": [2, 4]})
    forms: list[object] = [
        want,
        [{"a": 1.0, "b": 2}, {"a": 3.0, "b": 4}],
        {"a": [1.0, 3.0], "b": [2, 4]},
        np.array([[1.0, 2], [3.0, 4]]),
    ]
    for form in forms:
        pd.testing.assert_frame_equal(conform(form, COLUMNS), want)  # type: ignore[arg-type]


def test_missing_column_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"missing column 'b'; the model expects"):
        conform([{"a": 1.0}], COLUMNS)


def test_uncastable_dtype_names_the_column() -> None:
    with pytest.raises(InvalidInput, match=r"column 'b' has dtype float64 \(values that are not"):
        conform({"a": [1.0], "b": [2.5]}, COLUMNS)
    with pytest.raises(InvalidInput, match=r"column 'a' has dtype string"):
        conform({"a": ["x"], "b": [2]}, COLUMNS)


def test_whole_floats_cast_to_int_columns() -> None:
    out = conform({"a": [1.0], "b": [2.0]}, COLUMNS)
    assert isinstance(out, pd.DataFrame)
    assert out["b"].tolist() == [2]


def test_array_with_wrong_width_names_the_dimension() -> None:
    with pytest.raises(InvalidInput, match=r"dimension 1 of the input must have size 2"):
        conform(np.zeros((3, 5)), COLUMNS)


TENSOR = TensorSchema("float32", (-1, 3))


def test_tensor_dimension_errors_name_the_dimension() -> None:
    with pytest.raises(InvalidInput, match=r"dimension 1 of the input has size 4, expected 3"):
        conform(np.zeros((2, 4)), TENSOR)
    with pytest.raises(InvalidInput, match=r"expected a 2-dimensional input"):
        conform(np.zeros(3), TENSOR)


def test_tensor_accepts_frames_and_lists_and_casts() -> None:
    out = conform([[1, 2, 3]], TENSOR)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, 2.0, 3.0]]
    frame_out = conform(pd.DataFrame([[1.0, 2.0, 3.0]]), TENSOR)
    assert isinstance(frame_out, np.ndarray)
    assert frame_out.shape == (1, 3)


def test_int_tensor_refuses_fractions() -> None:
    with pytest.raises(InvalidInput, match=r"the input tensor has dtype float64"):
        conform(np.array([[0.5]]), TensorSchema("int64", (-1, 1)))


def test_unsupported_input_type_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unsupported input type str"):
        conform("a,b", COLUMNS)  # type: ignore[arg-type]


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_dtypes = st.sampled_from([np.int64, np.float64, np.float32, np.bool_, str])


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    columns = []
    for name in names:
        dtype = draw(_dtypes)
        elements = st.text(alphabet="xyz é", max_size=4) if dtype is str else None
        columns.append(hpd.column(name, dtype=dtype, elements=elements))
    return draw(hpd.data_frames(columns=columns, index=hpd.range_indexes(min_size=1, max_size=8)))


@given(frames())
def test_a_frame_matches_its_own_signature(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    out = conform(frame, schema)
    assert infer_schema(out) == schema


@given(frames(), st.data())
def test_removing_a_column_fails_naming_it(frame: pd.DataFrame, data: st.DataObject) -> None:
    schema = infer_schema(frame)
    victim = data.draw(st.sampled_from(list(frame.columns)))
    with pytest.raises(InvalidInput) as info:
        conform(frame.drop(columns=[victim]), schema)
    assert f"missing column {victim!r}" in str(info.value)


def test_numeric_strings_and_single_records_are_accepted() -> None:
    out = conform({"a": "1.5", "b": 2}, COLUMNS)
    assert isinstance(out, pd.DataFrame)
    assert out.to_dict("records") == [{"a": 1.5, "b": 2}]
    with pytest.raises(InvalidInput, match=r"column 'b' has dtype int64 \(values out of range\)"):
        conform({"a": [1.0], "b": [2**40]}, ColumnSchema((ColumnSpec("b", "int32"),)))
