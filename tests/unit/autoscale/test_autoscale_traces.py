"""Trace files: both formats, time scaling, service-time models, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.autoscale import load_counts, load_timestamps, parse_service_time
from modelyard.core.errors import InvalidInput

TRACES = Path(__file__).parents[3] / ".." / "shared" / "traces"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iso_and_epoch_timestamps_are_relative_and_sorted(tmp_path: Path) -> None:
    iso = write(tmp_path, "t,x\n2024-01-01 00:00:02.5,a\n2024-01-01T00:00:00Z,b\n\n")
    trace = load_timestamps(iso, time_column="t")
    assert trace.arrival_s.tolist() == [0.0, 2.5]
    epoch = write(tmp_path, "ts,s\n1700000010,0.5\n1700000000,2\n", "epoch.csv")
    trace = load_timestamps(epoch, time_column="ts", service_time_column="s")
    assert trace.arrival_s.tolist() == [0.0, 10.0]
    assert trace.service_s is not None
    assert trace.service_s.tolist() == [2.0, 0.5]
    assert trace.duration_s == 10.0


def test_time_scale_compresses_arrivals_not_service(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,s\n0,3\n10,4\n")
    trace = load_timestamps(path, time_column="ts", service_time_column="s").scaled(10)
    assert trace.arrival_s.tolist() == [0.0, 1.0]
    assert trace.service_s is not None
    assert trace.service_s.tolist() == [3.0, 4.0]
    with pytest.raises(InvalidInput, match="time-scale"):
        trace.scaled(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the trace file is empty"),
        ("ts\n", "line 2: the trace has a header but no requests"),
        ("ts\n1\nyesterday\n", "line 3: cannot parse timestamp 'yesterday'"),
        ("other\n1\n", "line 1: no column 'ts'"),
        ("ts,s\n1,2\n2\n", "line 3: expected 2 columns"),
    ],
)
def test_malformed_timestamp_traces_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput, match=message):
        load_timestamps(path, time_column="ts", service_time_column="s" if ",s" in text else None)


@pytest.mark.parametrize(
    ("text", "message"),
    [("ts,s\n1,-2\n", "line 2: service time must be"), ("ts,s\n1,2\n3,fast\n", "line 3: service")],
)
def test_bad_service_time_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_timestamps(write(tmp_path, text), time_column="ts", service_time_column="s")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_timestamps(tmp_path / "nope.csv", time_column="ts")


def test_counts_spread_requests_inside_their_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "2 0\n3\n", "counts.txt")
    trace = load_counts(path, interval_s=10, seed=1)
    assert trace.requests == 5
    absolute = trace.arrival_s  # relative to the first arrival, which lies in [0, 10)
    assert np.all(np.diff(absolute) >= 0)
    assert trace.duration_s < 30
    again = load_counts(path, interval_s=10, seed=1)
    assert np.array_equal(trace.arrival_s, again.arrival_s)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\n3 -4\n", "line 2: count -4 is negative"),
        ("1\n2.5\n", "line 2: count '2.5' is not an integer"),
        ("  \n\n", "line 1: the trace file is empty"),
        ("0 0\n0\n", "no requests"),
    ],
)
def test_malformed_counts_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_counts(write(tmp_path, text, "counts.txt"), interval_s=1)


def test_service_time_models() -> None:
    constant = parse_service_time("40")
    assert constant.sample(3, seed=0).tolist() == [0.04, 0.04, 0.04]
    lognormal = parse_service_time("lognormal:40,0.5")
    draws = lognormal.sample(20_000, seed=0)
    assert abs(draws.mean() - 0.04) < 0.002
    assert np.array_equal(draws, lognormal.sample(20_000, seed=0))
    for bad in ("fast", "-1", "lognormal:40", "lognormal:0,1", "lognormal:40,-1"):
        with pytest.raises(InvalidInput, match="service-time-ms"):
            parse_service_time(bad)


def test_real_traces_parse() -> None:
    azure = TRACES / "azure_llm_conv_2023.csv"
    alibaba = TRACES / "alibaba_genai_lora_2024.csv"
    if not (azure.exists() and alibaba.exists()):
        pytest.skip(f"shared traces not found under {TRACES.resolve()}")
    trace = load_timestamps(azure, time_column="TIMESTAMP")
    assert trace.requests == 19_366
    assert 3400 < trace.duration_s < 3600
    genai = load_timestamps(
        alibaba, time_column="gmt_create", service_time_column="exec_time_seconds"
    )
    assert genai.requests == 26_823
    assert genai.service_s is not None
    assert 20 < genai.service_s.mean() < 40
