"""compute_drift: Evidently's default tests and verdicts, options, inputs, missing data, errors."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy.spatial.distance import jensenshannon

from modelyard.core.errors import InvalidInput
from modelyard.monitor._drift import (
    DriftOptions,
    DriftReport,
    compute_drift,
    prepare_reference,
)

RNG_SEED = 20261126


def frame(n: int, seed: int, shift: float = 0.0, **extra: Any) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {
        "x": rng.normal(shift, 1.0, n),
        "y": rng.exponential(2.0, n) + shift,
        "city": rng.choice(
            ["paris", "rome", "oslo"], n, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5]
        ),
        "flag": rng.choice(["yes", "no"], n),
        "level": rng.integers(0, 4, n),  # integer with few values: categorical
        "age": rng.integers(18, 90, n),  # integer with many values: numeric
        **extra,
    }
    return pd.DataFrame(data)


# --- Evidently's default choice ---------------------------------------------------------


def test_large_reference_uses_wasserstein_and_jensenshannon() -> None:
    report = compute_drift(frame(5000, 1), frame(4000, 2))
    tests = {f.column: (f.kind, f.test, f.threshold) for f in report.features}
    assert tests == {
        "x": ("numeric", "wasserstein", 0.1),
        "y": ("numeric", "wasserstein", 0.1),
        "city": ("categorical", "jensenshannon", 0.1),
        "flag": ("categorical", "jensenshannon", 0.1),
        "level": ("categorical", "jensenshannon", 0.1),
        "age": ("numeric", "wasserstein", 0.1),
    }
    assert not report.dataset_drift
    assert report.drift_share == 0.0
    assert all(f.p_value is None for f in report.features)


def test_small_reference_uses_p_value_tests() -> None:
    report = compute_drift(frame(1000, 1), frame(300, 2))
    tests = {f.column: f.test for f in report.features}
    assert tests == {
        "x": "ks",
        "y": "ks",
        "city": "chisquare",  # three categories
        "flag": "z",  # two categories
        "level": "chisquare",
        "age": "ks",
    }
    for f in report.features:
        assert f.p_value == f.statistic
        assert f.threshold == 0.05


def test_reference_size_counts_non_missing_values() -> None:
    # 1,200 rows of which 300 missing: 900 values, so the small-reference tests apply.
    ref = frame(1200, 1)
    ref.loc[ref.index[:300], "x"] = np.nan
    report = compute_drift(ref, frame(800, 2), columns=["x", "y"])
    assert report["x"].test == "ks"
    assert report["y"].test == "wasserstein"
    assert report["x"].missing_share_reference == 0.25


@pytest.mark.parametrize(
    ("n_ref", "values", "test"),
    [
        (500, [0.0, 1.0, 2.5], "chisquare"),
        (500, [0.0, 1.0], "z"),
        (500, [0.0, 1.0, 2.0, 3.0, 4.0], "chisquare"),
        (500, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "ks"),
        (3000, [0.0, 1.0, 2.5], "jensenshannon"),
        (3000, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "wasserstein"),
    ],
)
def test_numeric_columns_with_few_values(n_ref: int, values: list[float], test: str) -> None:
    rng = np.random.default_rng(5)
    ref = {"v": rng.choice(values, n_ref)}
    cur = {"v": rng.choice(values, 700)}
    feature = compute_drift(ref, cur).features[0]
    assert (feature.kind, feature.test) == ("numeric", test)


def test_few_values_count_both_sides() -> None:
    # 3 values in the reference, 4 new ones in current: 7 values together, so KS.
    ref = {"v": np.repeat([1.0, 2.0, 3.0], 100)}
    cur = {"v": np.repeat([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 20)}
    assert compute_drift(ref, cur).features[0].test == "ks"


def test_integer_cardinality_limit_is_ten() -> None:
    ref = {
        "ten": np.arange(1000) % 10,
        "eleven": np.arange(1000) % 11,
        "b": np.arange(1000) % 2 == 0,
    }
    report = compute_drift(ref, ref)
    assert report["ten"].kind == "categorical"
    assert report["eleven"].kind == "numeric"
    assert report["b"].kind == "categorical"
    assert report["b"].test == "z"


# --- statistics against scipy / Evidently's formulas ---------------------------------------


def test_statistics_match_scipy_on_a_table() -> None:
    ref, cur = frame(800, 3), frame(600, 4, shift=0.2)
    report = compute_drift(ref, cur)
    assert report["x"].statistic == pytest.approx(
        scipy.stats.ks_2samp(ref.x, cur.x).pvalue, rel=1e-9
    )
    counts_ref = ref.city.value_counts()
    counts_cur = cur.city.value_counts().reindex(counts_ref.index, fill_value=0)
    expected = scipy.stats.chisquare(counts_cur, counts_ref * len(cur) / len(ref)).pvalue
    assert report["city"].statistic == pytest.approx(expected, rel=1e-9)

    big_ref, big_cur = frame(5000, 5), frame(3000, 6, shift=0.3)
    report = compute_drift(big_ref, big_cur)
    w = scipy.stats.wasserstein_distance(big_ref.y, big_cur.y) / np.std(big_ref.y)
    assert report["y"].statistic == pytest.approx(w, rel=1e-9)
    assert report["y"].drifted
    keys = sorted(set(big_ref.city) | set(big_cur.city))
    p = big_ref.city.value_counts().reindex(keys, fill_value=0) / len(big_ref)
    q = big_cur.city.value_counts().reindex(keys, fill_value=0) / len(big_cur)
    assert report["city"].statistic == pytest.approx(jensenshannon(p, q), rel=1e-9)
    assert report["city"].drifted


def test_psi_bins_like_evidently() -> None:
    rng = np.random.default_rng(9)
    ref = {"x": rng.normal(0, 1, 4000), "few": rng.choice([1.0, 2.0, 3.0], 4000)}
    cur = {"x": rng.normal(0.5, 1, 2500), "few": rng.choice([1.0, 2.0, 3.0, 4.0], 2500)}
    report = compute_drift(ref, cur, options=DriftOptions(stattest="psi"))

    def evidently_psi(r: np.ndarray, c: np.ndarray) -> float:
        if len(np.unique(r)) > 20:
            edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
            rp = np.histogram(r, edges)[0] / len(r)
            cp = np.histogram(c, edges)[0] / len(c)
        else:
            keys = np.union1d(r, c)
            rp = np.array([(r == k).sum() for k in keys]) / len(r)
            cp = np.array([(c == k).sum() for k in keys]) / len(c)
        for shares in (rp, cp):
            smallest = shares[shares != 0].min()
            shares[shares == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
        return float(np.sum((rp - cp) * np.log(rp / cp)))

    assert report["x"].test == "psi"
    assert report["x"].statistic == pytest.approx(evidently_psi(ref["x"], cur["x"]), rel=1e-9)
    assert report["few"].statistic == pytest.approx(evidently_psi(ref["few"], cur["few"]), rel=1e-9)
    assert report["x"].drifted
    assert report["few"].drifted


def test_z_test_on_binary_strings() -> None:
    ref = {"b": np.array(["no"] * 300 + ["yes"] * 200, dtype=object)}
    cur = {"b": np.array(["no"] * 150 + ["yes"] * 250, dtype=object)}
    f = compute_drift(ref, cur).features[0]
    p1, p2, pooled = 200 / 500, 250 / 400, 450 / 900
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 500 + 1 / 400))
    assert f.test == "z"
    assert f.statistic == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)
    assert f.drifted


def test_z_test_one_and_the_same_value_is_no_drift() -> None:
    f = compute_drift({"b": np.array(["a"] * 50)}, {"b": np.array(["a"] * 40)}).features[0]
    assert (f.test, f.statistic, f.drifted) == ("z", 1.0, False)


def test_a_new_category_in_current_is_drift_for_chisquare() -> None:
    ref = {"c": np.array(["a", "b", "c"] * 100)}
    cur = {"c": np.array(["a", "b", "c", "d"] * 50)}
    f = compute_drift(ref, cur).features[0]
    assert (f.test, f.statistic, f.drifted) == ("chisquare", 0.0, True)


# --- dataset level --------------------------------------------------------------------------


def test_drift_share_and_dataset_drift() -> None:
    ref, cur = frame(3000, 1), frame(3000, 2)
    cur["x"] += 1.0  # drift in 3 of 6 columns
    cur["y"] += 5.0
    cur["city"] = "oslo"
    report = compute_drift(ref, cur)
    assert set(report.drifted_columns) == {"x", "y", "city"}
    assert report.drift_share == 0.5
    assert report.dataset_drift  # share >= 0.5
    assert not compute_drift(ref, cur, options=DriftOptions(drift_share=0.6)).dataset_drift


@settings(max_examples=25, deadline=None)
@given(
    shifts=hs.lists(hs.sampled_from([0.0, 0.02, 0.5, 3.0]), min_size=1, max_size=6),
    share=hs.floats(0.05, 1.0),
    n_ref=hs.sampled_from([200, 1500]),
)
def test_drift_share_is_the_drifted_fraction(shifts: list[float], share: float, n_ref: int) -> None:
    rng = np.random.default_rng(len(shifts))
    ref = {f"c{i}": rng.normal(0, 1, n_ref) for i in range(len(shifts))}
    cur = {f"c{i}": rng.normal(s, 1, 700) for i, s in enumerate(shifts)}
    report = compute_drift(ref, cur, options=DriftOptions(drift_share=share))
    drifted = sum(f.drifted for f in report.features)
    assert report.drift_share == drifted / len(shifts)
    assert report.dataset_drift == (drifted / len(shifts) >= share)
    for f, s in zip(report.features, shifts, strict=True):
        if s >= 0.5:
            assert f.drifted
        assert f.drifted == ((f.statistic <= 0.05) if f.test == "ks" else f.statistic >= 0.1)


@settings(max_examples=25, deadline=None)
@given(seed=hs.integers(0, 2**32 - 1), n=hs.integers(1, 3000))
def test_identical_data_never_drifts(seed: int, n: int) -> None:
    data = frame(n, seed)
    report = compute_drift(data, data)
    assert report.drift_share == 0.0
    assert not report.dataset_drift
    for f in report.features:
        if f.test in ("ks", "chisquare", "z"):
            assert f.statistic == pytest.approx(1.0)
        else:
            assert f.statistic == 0.0


# --- options ------------------------------------------------------------------------------


def test_stattest_for_all_per_column_and_per_kind() -> None:
    ref, cur = frame(3000, 1), frame(2000, 2)
    report = compute_drift(ref, cur, options=DriftOptions(stattest="psi", per_column={"age": "ks"}))
    assert {f.column: f.test for f in report.features} == {
        "x": "psi", "y": "psi", "city": "psi", "flag": "psi", "level": "psi", "age": "ks",
    }  # fmt: skip
    assert report["age"].threshold == 0.05
    report = compute_drift(
        ref,
        cur,
        options=DriftOptions(stattest="jensenshannon", num_stattest="ks", cat_stattest="psi"),
    )
    assert {f.column: f.test for f in report.features} == {
        "x": "ks", "y": "ks", "city": "psi", "flag": "psi", "level": "psi", "age": "ks",
    }  # fmt: skip


def test_thresholds_resolve_in_evidentlys_order() -> None:
    ref, cur = frame(3000, 1), frame(2000, 2, shift=0.05)
    opts = DriftOptions(
        threshold=0.5, num_threshold=0.01, per_column_threshold={"x": 0.2, "city": 0.001}
    )
    report = compute_drift(ref, cur, options=opts)
    assert report["x"].threshold == 0.2
    assert report["y"].threshold == 0.01
    assert report["y"].drifted
    assert report["city"].threshold == 0.001
    assert report["flag"].threshold == 0.5
    assert not report["flag"].drifted


def test_forced_kinds() -> None:
    ref, cur = frame(3000, 1), frame(2000, 2)
    report = compute_drift(
        ref,
        cur,
        options=DriftOptions(categorical=frozenset({"age"}), numerical=frozenset({"level"})),
    )
    assert report["age"].kind == "categorical"
    assert report["level"].kind == "numeric"
    assert report["level"].test == "jensenshannon"  # 4 values: few-values rule


def test_workers_do_not_change_results() -> None:
    ref, cur = frame(3000, 1), frame(2000, 2, shift=0.1)
    one = compute_drift(ref, cur, options=DriftOptions(workers=1))
    many = compute_drift(ref, cur, options=DriftOptions(workers=4))
    assert one == many


# --- inputs and the prepared reference --------------------------------------------------------


def test_table_frame_and_mapping_agree() -> None:
    ref, cur = frame(2500, 1), frame(1500, 2, shift=0.1)
    from_frame = compute_drift(ref, cur)
    from_table = compute_drift(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur))
    mapping = {c: ref[c].to_numpy() for c in ref.columns}
    from_mapping = compute_drift(mapping, {c: cur[c].to_numpy() for c in cur.columns})
    assert from_frame == from_table == from_mapping


def test_chunked_dictionary_and_nullable_columns() -> None:
    ref, cur = frame(2500, 1), frame(1500, 2, shift=0.1)
    plain = compute_drift(ref, cur, columns=["city", "age", "x"])
    table = pa.Table.from_pandas(cur)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=400))
    chunked = chunked.set_column(
        chunked.schema.get_field_index("city"), "city", chunked.column("city").dictionary_encode()
    )
    ref_frame = ref.astype({"city": "category", "age": "Int64"})
    assert compute_drift(ref_frame, chunked, columns=["city", "age", "x"]) == plain


def test_arrow_numbers_with_nulls_offsets_and_odd_types() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, 3000)
    missing = rng.random(3000) < 0.1
    expected = compute_drift({"x": x[:2000]}, {"x": np.where(missing, np.nan, x)[1000:]})
    arrow_x = pa.array(x, mask=missing)
    cases = {
        "float64 sliced": arrow_x.slice(1000),
        "float32": pc_cast(arrow_x.slice(1000), pa.float32()),
        "chunked": pa.chunked_array([arrow_x.slice(1000, 700), arrow_x.slice(1700)]),
    }
    for label, values in cases.items():
        got = compute_drift({"x": pa.array(x[:2000])}, {"x": values})
        rel = 1e-6 if label == "float32" else 1e-12
        assert got["x"].statistic == pytest.approx(expected["x"].statistic, rel=rel), label
        assert got["x"].missing_share_current == expected["x"].missing_share_current, label
    ints = np.arange(3000) % 97
    holes = np.where(ints == 5, np.nan, ints.astype(np.float64))
    int_expected = compute_drift({"i": ints[:2000]}, {"i": holes[1000:]})
    with_nulls = pa.array(ints, type=pa.int32(), mask=ints == 5).slice(1000)
    assert compute_drift({"i": ints[:2000]}, {"i": with_nulls}) == int_expected
    decimals = pa.array([Decimal(f"{v:.2f}") for v in x[:500]], type=pa.decimal128(10, 2))
    report = compute_drift({"d": np.round(x[:500], 2)}, {"d": decimals})
    assert report["d"].statistic == pytest.approx(1.0)
    flags = compute_drift(
        {"b": np.arange(400) % 3 == 0}, {"b": np.arange(300) % 2 == 0}, options=NUMERIC_B
    )
    assert flags["b"].kind == "numeric"


NUMERIC_B = DriftOptions(numerical=frozenset({"b"}))


def pc_cast(values: Any, to: Any) -> Any:
    import pyarrow.compute as pc

    return pc.cast(values, to)


def test_prepared_reference_gives_the_same_report() -> None:
    ref, cur = frame(2500, 1), frame(1500, 2, shift=0.1)
    prepared = prepare_reference(ref)
    assert prepared.columns == tuple(ref.columns)
    assert compute_drift(prepared, cur) == compute_drift(ref, cur)
    assert compute_drift(prepared, cur, columns=["x"]) == compute_drift(ref, cur, columns=["x"])
    with pytest.raises(InvalidInput, match="prepared with"):
        compute_drift(prepared, cur, options=DriftOptions(categorical=frozenset({"age"})))
    with pytest.raises(InvalidInput, match="'nope'"):
        compute_drift(prepared, cur, columns=["nope"])


def test_unsupported_columns_are_skipped_unless_named() -> None:
    ref = frame(100, 1, when=pd.date_range("2026-01-01", periods=100, freq="h"))
    report = compute_drift(ref, ref)
    assert report.skipped == ("when",)
    assert "when" not in [f.column for f in report.features]
    with pytest.raises(InvalidInput, match="'when' in reference has type"):
        compute_drift(ref, ref, columns=["when"])


def test_to_json_is_strict_json() -> None:
    cur = frame(500, 2)
    cur["x"] = np.nan
    report = compute_drift(frame(800, 1), cur)
    doc = report.to_json()
    json.dumps(doc, allow_nan=False)
    assert doc["number_of_columns"] == 6
    assert doc["number_of_tested_columns"] == 5
    x = next(f for f in doc["features"] if f["column"] == "x")
    assert x["statistic"] is None
    assert x["tested"] is False


# --- missing values -------------------------------------------------------------------------


def test_missing_values_are_dropped_and_reported() -> None:
    rng = np.random.default_rng(11)
    ref_x, cur_x = rng.normal(0, 1, 600), rng.normal(0, 1, 400)
    cur_x_missing = cur_x.copy()
    cur_x_missing[:100] = np.nan
    cur_x_missing[100] = np.inf
    cities = rng.choice(["a", "b", "c"], 400).astype(object)
    cities[:40] = None
    report = compute_drift(
        {"x": ref_x, "c": rng.choice(["a", "b", "c"], 600)}, {"x": cur_x_missing, "c": cities}
    )
    assert report["x"].missing_share_current == pytest.approx(101 / 400)
    assert report["x"].statistic == pytest.approx(scipy.stats.ks_2samp(ref_x, cur_x[101:]).pvalue)
    assert report["c"].missing_share_current == pytest.approx(0.1)
    assert report["x"].current_rows == 400


@pytest.mark.parametrize("side", ["reference", "current"])
def test_a_column_missing_entirely_on_one_side_is_reported_not_tested(side: str) -> None:
    ref, cur = frame(500, 1), frame(400, 2)
    target = ref if side == "reference" else cur
    target["x"] = np.nan
    target["city"] = None
    report = compute_drift(ref, cur)
    for column in ("x", "city"):
        f = report[column]
        assert not f.tested
        assert not f.drifted
        assert math.isnan(f.statistic)
        assert f.note is not None
        assert side in f.note
    assert report.to_json()["number_of_tested_columns"] == 4


def test_all_null_typed_reference_column() -> None:
    ref = pa.table({"c": pa.nulls(50), "x": pa.array(np.arange(50.0))})
    cur = pa.table({"c": pa.array(["a", "b"] * 20), "x": pa.array(np.arange(40.0))})
    report = compute_drift(ref, cur)
    assert not report["c"].tested
    assert report["c"].kind == "categorical"
    assert report["c"].missing_share_reference == 1.0


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stattest": "t-test"}, "unknown stattest 't-test'"),
        ({"per_column": {"x": "anderson"}}, r"per_column\['x'\]: unknown stattest"),
        ({"num_stattest": "chisquare"}, "does not apply to numeric"),
        ({"cat_stattest": "ks"}, "does not apply to categorical"),
        ({"threshold": -0.1}, "threshold must be a positive finite number"),
        ({"threshold": math.nan}, "threshold must be a positive finite number"),
        ({"per_column_threshold": {"x": 0}}, r"per_column_threshold\['x'\]"),
        ({"drift_share": 0}, r"drift_share must be in \(0, 1\]"),
        ({"drift_share": 1.5}, "drift_share"),
        ({"categorical": frozenset({"a"}), "numerical": frozenset({"a"})}, "both categorical"),
        ({"workers": 0}, "workers"),
    ],
)
def test_invalid_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        DriftOptions(**kwargs)


def test_errors_name_what_is_wrong() -> None:
    ref, cur = frame(300, 1), frame(200, 2)
    with pytest.raises(InvalidInput, match="missing in reference: 'nope'"):
        compute_drift(ref, cur, columns=["x", "nope"])
    with pytest.raises(InvalidInput, match="missing in current: 'city'"):
        compute_drift(ref, cur.drop(columns=["city"]))
    with pytest.raises(InvalidInput, match="current is empty"):
        compute_drift(ref, cur.iloc[:0])
    with pytest.raises(InvalidInput, match="reference is empty"):
        compute_drift(ref.iloc[:0], cur)
    with pytest.raises(InvalidInput, match="reference is empty"):
        prepare_reference(ref.iloc[:0])
    with pytest.raises(InvalidInput, match="'x' holds numeric values in reference but string"):
        compute_drift(ref, cur.assign(x="a"))
    with pytest.raises(InvalidInput, match="'city' holds string values in reference but numeric"):
        compute_drift(ref, cur.assign(city=1.5))
    with pytest.raises(
        InvalidInput, match="stattest 'ks' does not apply to categorical column 'city'"
    ):
        compute_drift(ref, cur, options=DriftOptions(per_column={"city": "ks"}))
    with pytest.raises(InvalidInput, match="'chisquare' does not apply to numeric column 'x'"):
        compute_drift(ref, cur, options=DriftOptions(stattest="chisquare"))
    with pytest.raises(
        InvalidInput, match=r"threshold 1.5 for column 'x' is out of range.*\(0, 1\)"
    ):
        compute_drift(ref, cur, options=DriftOptions(threshold=1.5))
    with pytest.raises(InvalidInput, match="Jensen-Shannon"):
        compute_drift(frame(3000, 1), cur, columns=["city"], options=DriftOptions(threshold=2))
    with pytest.raises(InvalidInput, match="'mixed' in current mixes types"):
        compute_drift({"mixed": np.array(["a", "b"])}, {"mixed": np.array(["a", 3], dtype=object)})
    with pytest.raises(InvalidInput, match="not a string"):
        compute_drift(ref, cur, columns="x")
    with pytest.raises(InvalidInput, match="pyarrow Table, a pandas DataFrame or a mapping"):
        compute_drift([1, 2, 3], cur)
    with pytest.raises(InvalidInput, match="forced numerical but holds string"):
        compute_drift(ref, cur, options=DriftOptions(numerical=frozenset({"city"})))


def test_report_lookup() -> None:
    report = compute_drift(frame(100, 1), frame(100, 2), columns=["x"])
    assert isinstance(report, DriftReport)
    assert report["x"].column == "x"
    with pytest.raises(KeyError):
        report["y"]


def test_frames_with_non_string_column_labels() -> None:
    ref = pd.DataFrame({0: np.arange(100.0), 1: ["a", "b"] * 50})
    report = compute_drift(ref, ref)
    assert [f.column for f in report.features] == ["0", "1"]
    assert compute_drift(ref, ref, columns=["1"])["1"].kind == "categorical"


@pytest.mark.parametrize("n_ref", [800, 30_000])
def test_low_cardinality_numbers_are_counted_not_sorted(
    n_ref: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.monitor import _drift

    rng = np.random.default_rng(8)

    def side(n: int, p: list[float]) -> dict[str, Any]:
        few = rng.choice([-0.0, 0.0, 1.5, 3.0], n, p=p)
        few[rng.random(n) < 0.05] = np.nan
        return {
            "few": few,
            "mid": rng.integers(0, 300, n) * 0.25,  # 300 values: sturges bins, wasserstein
            "ints": pa.array(rng.integers(0, 40, n), mask=rng.random(n) < 0.01),
        }

    ref, cur = side(n_ref, [0.2, 0.3, 0.3, 0.2]), side(20_000, [0.25, 0.25, 0.3, 0.2])
    for options in (DriftOptions(), DriftOptions(stattest="psi"), DriftOptions(num_stattest="ks")):
        counted = compute_drift(ref, cur, options=options)
        assert compute_drift(prepare_reference(ref), cur, options=options) == counted
        monkeypatch.setattr(_drift, "_looks_low_cardinality", lambda src: False)
        monkeypatch.setattr(_drift, "_COUNTED_MAX_DISTINCT", -1)
        assert compute_drift(ref, cur, options=options) == counted
        monkeypatch.undo()
    report = compute_drift(ref, cur)
    mid_ref, mid_cur = ref["mid"], cur["mid"]
    if n_ref > 1000:
        w = scipy.stats.wasserstein_distance(mid_ref, mid_cur) / np.std(mid_ref)
        assert report["mid"].statistic == pytest.approx(w, rel=1e-9)
    else:
        ks = scipy.stats.ks_2samp(mid_ref, mid_cur).pvalue
        assert report["mid"].statistic == pytest.approx(ks, rel=1e-9)
    assert report["few"].missing_share_current == pytest.approx(np.isnan(cur["few"]).mean())
