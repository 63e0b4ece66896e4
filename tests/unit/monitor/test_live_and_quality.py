"""Live samples from gateway counters, and model quality from labels (pure functions)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.gateway.stats import LATENCY_BUCKETS_S, bucket_index
from modelyard.monitor._live import live_values
from modelyard.monitor._quality import quality, quality_buckets, read_labels, roc_auc


def _snap(now_s: float, revs: dict[int, tuple[int, int, float]]) -> GatewaySnapshot:
    """revision -> (completions, errors, latency of every request)."""
    out = {}
    for rev, (done, errors, latency) in revs.items():
        buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        buckets[bucket_index(latency)] = done
        out[str(rev)] = {
            "completions": done,
            "errors": errors,
            "latency_buckets": buckets,
            "in_flight": 2,
            "queued": 1,
        }
    return GatewaySnapshot.parse({"now_s": now_s, "deployments": {"d": {"revisions": out}}})


def test_rates_and_quantiles_over_revisions() -> None:
    prev = _snap(100.0, {1: (1000, 0, 0.005), 2: (10, 0, 0.005)})
    cur = _snap(110.0, {1: (1900, 9, 0.005), 2: (110, 1, 0.005)})
    v = live_values(prev, cur, "d", replicas=3)
    assert v["rps"] == pytest.approx(100.0)
    assert v["error_rate"] == pytest.approx(0.01)
    assert 4.0 < (v["p99_ms"] or 0) <= 6.0  # within the 5 ms bucket
    assert (v["in_flight"], v["queued"], v["replicas"]) == (4.0, 2.0, 3.0)


def test_a_gateway_restart_counts_from_zero_not_negative() -> None:
    prev = _snap(100.0, {1: (1000, 5, 0.01)})
    cur = _snap(110.0, {1: (50, 0, 0.01)})
    v = live_values(prev, cur, "d", replicas=1)
    assert v["rps"] == pytest.approx(5.0)
    assert v["error_rate"] == 0.0


def test_no_interval_no_rate() -> None:
    cur = _snap(100.0, {1: (10, 0, 0.01)})
    assert live_values(None, cur, "d", replicas=1)["rps"] is None
    assert live_values(None, None, "d", replicas=0)["in_flight"] is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 100)), min_size=2, max_size=6),
    st.floats(0.1, 100),
)
def test_rates_are_never_negative_and_errors_a_share(
    steps: list[tuple[int, int]], dt: float
) -> None:
    snaps = [
        _snap(i * dt, {1: (done, min(err, done), 0.01)}) for i, (done, err) in enumerate(steps)
    ]
    for prev, cur in itertools.pairwise(snaps):
        v = live_values(prev, cur, "d", replicas=1)
        assert v["rps"] is not None
        assert v["rps"] >= 0
        assert v["error_rate"] is None or 0 <= v["error_rate"] <= 1


def test_labels_from_csv_json_and_parquet() -> None:
    csv = read_labels(b"request_id,label,row\nabc,1,0\n42,0,1\n", "text/csv")
    assert csv.column("request_id").to_pylist() == ["abc", "42"]
    js = read_labels(
        json.dumps({"labels": [{"request_id": "a", "label": "yes"}]}).encode(), "application/json"
    )
    assert js.column("row").to_pylist() == [0]
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"request_id": ["x"], "label": [0.5]}), sink)
    assert read_labels(sink.getvalue(), "").num_rows == 1


@pytest.mark.parametrize(
    ("data", "kind", "fragment"),
    [
        (b"", "text/csv", "empty"),
        (b"id,label\n1,1\n", "text/csv", "'request_id'"),
        (b"request_id,label\n,1\n", "text/csv", "line 1"),
        (b"request_id,label,row\na,1,-1\n", "text/csv", "row"),
        (b'{"labels": 3}', "application/json", "JSON labels"),
        (b"{nope", "application/json", "could not be read"),
    ],
)
def test_bad_label_files(data: bytes, kind: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        read_labels(data, kind)


def test_quality_of_classes_and_of_numbers() -> None:
    pred = np.array([1, 0, 1, 1])
    assert quality(pred, np.array([1, 0, 0, 1])) == {"accuracy": 0.75, "auc": pytest.approx(0.75)}
    reg = quality(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    assert reg == {"mae": pytest.approx(0.5), "rmse": pytest.approx(0.5)}
    assert quality(np.array(["a", "b"]), np.array(["a", "a"])) == {"accuracy": 0.5}


def test_auc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500).astype(bool)
    score = rng.normal(size=500) + y
    assert roc_auc(score, y) == pytest.approx(roc_auc_score(y, score))


def test_buckets_split_by_time() -> None:
    joined = pa.table(
        {
            "_ts": pa.array([0, 1000, 3_600_000, 3_601_000], pa.timestamp("ms", tz="UTC")),
            "_prediction": [1, 1, 0, 0],
            "label": [1, 0, 0, 0],
        }
    )
    buckets = quality_buckets(joined, bucket_s=3600)
    assert [(b["start_ms"], b["rows"], b["accuracy"]) for b in buckets] == [
        (0, 2, 0.5),
        (3_600_000, 2, 1.0),
    ]
