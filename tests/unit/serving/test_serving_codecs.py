"""Decoding OIP and MLflow request bodies against a signature; errors name the culprit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput
from modelyard.models import ColumnSchema, ColumnSpec, Signature, TensorSchema
from modelyard.serving._inputs import _finite_numbers, input_spec
from modelyard.serving._mlflow_protocol import decode_invocations, decode_predict
from modelyard.serving._oip import decode_infer, encode_outputs, tensor_metadata

COLS = Signature(
    ColumnSchema((ColumnSpec("a", "float64"), ColumnSpec("b", "int64"))),
    TensorSchema("int64", (-1,)),
)
TENSOR = Signature(TensorSchema("float32", (-1, 3)), TensorSchema("float64", (-1,)))
SPEC = input_spec(COLS)
TSPEC = input_spec(TENSOR)
assert SPEC is not None
assert TSPEC is not None


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["b", "a"], "data": [[1, 0.5], [2, 1.5]]}},
        {"dataframe_records": [{"a": 0.5, "b": 1}, {"a": 1.5, "b": 2}]},
        {"instances": [{"a": 0.5, "b": 1}, {"a": 1.5, "b": 2}]},
        {"instances": [[0.5, 1], [1.5, 2]]},
        {"inputs": {"a": [0.5, 1.5], "b": [1, 2]}},
        {"inputs": [[0.5, 1], [1.5, 2]]},
    ],
)
def test_every_mlflow_format_gives_the_same_rows(body: object) -> None:
    assert decode_invocations(SPEC, body).tolist() == [[0.5, 1.0], [1.5, 2.0]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_records": [{"a": 1.0}]}, "missing column 'b'"),
        ({"dataframe_records": [{"a": 1.0, "b": 1, "c": 3}]}, "unexpected column 'c'"),
        ({"dataframe_records": [{"a": "x", "b": 1}]}, "column 'a'"),
        ({"dataframe_records": [{"a": 1.0, "b": 1.5}]}, "column 'b' has values that are not whole"),
        ({"dataframe_records": [{"a": None, "b": 1}]}, "column 'a' has a null"),
        ({"dataframe_records": [{"a": "0.5", "b": 1}]}, "column 'a' has text"),
        ({"dataframe_split": {"data": [[0.5, "1"]]}}, "column 'b' has text"),
        ({"instances": [[0.5, 1], ["1.5", 2]]}, "column 'a' has text"),
        ({"inputs": {"a": [0.5, "1.5"], "b": [1, 2]}}, "column 'a' has text"),
        ({"instances": [[1.0, 2, 3]]}, "dimension 1 of the input has size 3, expected 2"),
        ({"records": []}, "exactly one of"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_mlflow_bodies_are_refused_naming_the_problem(body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_invocations(SPEC, body)


def test_predict_takes_instances_only() -> None:
    assert decode_predict(SPEC, {"instances": [[1, 2]]}).shape == (1, 2)
    with pytest.raises(InvalidInput, match="instances"):
        decode_predict(SPEC, {"inputs": [[1, 2]]})


def test_oip_column_tensors_and_a_single_matrix_decode_alike() -> None:
    by_column = {
        "id": "r1",
        "inputs": [
            {"name": "b", "shape": [2], "datatype": "INT64", "data": [1, 2]},
            {"name": "a", "shape": [2, 1], "datatype": "FP64", "data": [[0.5], [1.5]]},
        ],
    }
    rows, rid, outputs = decode_infer(SPEC, by_column)
    assert rows.tolist() == [[0.5, 1.0], [1.5, 2.0]]
    assert rid == "r1"
    assert outputs is None
    matrix = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [0.5, 1, 1.5, 2]}]
    }
    assert decode_infer(SPEC, matrix)[0].tolist() == rows.tolist()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}], "missing column 'b'"),
        ([{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}], "dimension 1"),
        ([{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}], "needs 6"),
        ([{"name": "x", "shape": [1, 3], "datatype": "BYTES", "data": ["a"]}], "datatype 'BYTES'"),
        ([{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, "2"]}], "has text"),
    ],
)
def test_bad_oip_inputs_are_refused(inputs: list[object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_infer(SPEC, {"inputs": inputs})


def test_tensor_model_metadata_and_outputs() -> None:
    ins, outs = tensor_metadata(TENSOR)
    assert ins == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 3]}]
    assert outs == [{"name": "output-0", "datatype": "FP64", "shape": [-1]}]
    rows, _, wanted = decode_infer(
        TSPEC,
        {
            "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
            "outputs": [{"name": "output-0"}],
        },
    )
    assert rows.dtype == np.float32
    assert rows.shape == (1, 3)
    encoded = encode_outputs(np.array([1.5]), TENSOR, wanted)
    assert encoded == [{"name": "output-0", "datatype": "FP64", "shape": [1], "data": [1.5]}]
    with pytest.raises(InvalidInput, match="unknown output 'nope'"):
        encode_outputs(np.array([1.5]), TENSOR, ["nope"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([[None, 1]], "column 'a' has a null"),
        ([[float("nan"), 1]], "column 'a' has a null, NaN or infinite"),
        ([[0.5, 1], [float("-inf"), 2]], "column 'a' has a null, NaN or infinite"),
        ([[float("inf"), 1], [float("-inf"), 2]], "column 'a' has a null, NaN or infinite"),
        ([["abc", 1]], "column 'a' has text"),
        ([[0.5, 1.5]], "column 'b' has values that are not whole"),
        ([[0.5]], "dimension 1 of the input has size 1, expected 2"),
        ([], "got shape"),
        ("rows", "'columns' and 'data'"),
    ],
)
def test_the_dataframe_split_fast_path_checks_like_the_others(data: object, message: str) -> None:
    body = {"dataframe_split": {"columns": ["a", "b"], "data": data}}
    with pytest.raises(InvalidInput, match=message):
        decode_invocations(SPEC, body)


def test_huge_finite_values_are_accepted() -> None:
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.7e308, 1], [1.7e308, 2]]}}
    assert decode_invocations(SPEC, body)[:, 0].tolist() == [1.7e308, 1.7e308]


@given(
    st.lists(
        st.lists(st.one_of(st.floats(), st.integers(-(10**20), 10**20), st.booleans()), max_size=5),
        max_size=5,
    )
)
def test_the_finite_shortcut_never_vouches_for_a_nan_or_an_infinity(
    rows: list[list[float]],
) -> None:
    if _finite_numbers(rows):
        assert all(math.isfinite(v) for row in rows for v in row)
    if all(math.isfinite(v) and abs(v) < 1e300 for row in rows for v in row):
        assert _finite_numbers(rows)  # and it does vouch for the usual rows
