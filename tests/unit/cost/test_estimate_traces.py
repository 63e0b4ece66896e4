"""Bad traces fail with the file, the line and a reason; out-of-order rows are sorted
with a note; the shared real traces still load."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.autoscale.traces import load_counts, load_timestamps, load_trace
from modelyard.core.errors import InvalidInput

TRACES = Path(__file__).parents[3] / ".." / "shared" / "traces"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,s\n1,0.1\nnoon,0.1\n", r"line 3: cannot parse timestamp 'noon'"),
        ("t,s\n1,0.1\n2,0.1,7\n", r"line 3: expected 2 columns, got 3"),
        ("t,s\n1,0.1\n2\n", r"line 3: expected 2 columns, got 1"),
        ("t,s\n1,0.1\n,0.1\n", r"line 3: empty timestamp in column 't' \(a gap"),
        ("t,s\n1,0.1\n,\n2,0.1\n", r"line 3: empty timestamp in column 't'"),
        ("t,s\n1,0.1\n2,\n", r"line 3: empty service time in column 's' \(a gap"),
        ("t,s\n1,0.1\n2,fast\n", r"line 3: service time 'fast' is not a number"),
        ("t,s\n1,0.1\n2,-0.5\n", r"line 3: service time must be a finite number >= 0"),
        ("t,s\n1,0.1\n2,inf\n", r"line 3: service time must be a finite number >= 0"),
        ("t,s\n1,0.1\nnan,0.1\n", r"line 3: timestamp 'nan' is not a finite number"),
        ("t,s\n1,0.1\n\n2,0.1\n", r"line 3: blank line between requests \(a gap"),
        (
            "t,s\n2024-01-01T00:00:00,0.1\n5,0.1\n",
            r"line 3: timestamp '5' is a number but line 2 has an ISO 8601 date",
        ),
        (
            "t,s\n5,0.1\n2024-01-01 00:00:01,0.1\n",
            r"line 3: timestamp '2024-01-01 00:00:01' is an ISO 8601 date but line 2 has a "
            "number",
        ),
    ],
)
def test_garbage_rows_and_gaps_in_timestamp_traces_name_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput, match=f"{path}: {message}"):
        load_timestamps(path, time_column="t", service_time_column="s")


def test_trailing_blank_lines_and_empty_spreadsheet_cells_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "t,s\n1,0.1,\n2,0.2,,\n\n\n")
    trace = load_timestamps(path, time_column="t", service_time_column="s")
    assert trace.arrival_s.tolist() == [0.0, 1.0]
    assert trace.notes == ()


def test_rows_out_of_order_are_sorted_with_a_note_naming_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "t,s\n0,0.1\n5,0.5\n3,0.3\n10,1.0\n4,0.4\n")
    trace = load_timestamps(path, time_column="t", service_time_column="s")
    assert trace.arrival_s.tolist() == [0.0, 3.0, 4.0, 5.0, 10.0]
    assert trace.service_s is not None
    assert trace.service_s.tolist() == [0.1, 0.3, 0.4, 0.5, 1.0]
    assert trace.notes == (
        f"{path}: 2 rows go back in time (the first at line 4); "
        "requests are replayed in arrival order",
    )
    assert trace.scaled(2.0).notes == trace.notes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3\n4\n\n5\n", r"line 3: blank line between counts \(a missing interval\)"),
        ("3 4\n \n5\n", r"line 2: blank line between counts"),
        ("3\nNA\n5\n", r"line 2: count 'NA' is not an integer"),
        ("3\n4.5\n", r"line 2: count '4.5' is not an integer"),
        ("3\n-1\n", r"line 2: count -1 is negative"),
    ],
)
def test_gaps_and_garbage_in_counts_traces_name_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text, "counts.txt")
    with pytest.raises(InvalidInput, match=f"{path}: {message}"):
        load_counts(path, interval_s=1.0)


def test_counts_may_end_with_blank_lines(tmp_path: Path) -> None:
    trace = load_counts(write(tmp_path, "3\n0\n2\n\n\n", "counts.txt"), interval_s=1.0)
    assert trace.requests == 5


def test_load_trace_checks_the_options_of_each_format(tmp_path: Path) -> None:
    path = write(tmp_path, "t\n1\n2\n")
    assert load_trace(path, fmt="timestamps", time_column="t").requests == 2
    with pytest.raises(InvalidInput, match="--format timestamps needs --time-column"):
        load_trace(path, fmt="timestamps")
    with pytest.raises(InvalidInput, match="--service-time-column needs --format timestamps"):
        load_trace(path, fmt="counts", service_time_column="s")
    with pytest.raises(InvalidInput, match="--format: want timestamps or counts"):
        load_trace(path, fmt="parquet", time_column="t")
    counts = write(tmp_path, "1 2\n", "counts.txt")
    assert load_trace(counts, fmt="counts", interval_s=2.0).requests == 3


def test_the_shared_real_traces_load_cleanly() -> None:
    azure = TRACES / "azure_llm_conv_2023.csv"
    alibaba = TRACES / "alibaba_genai_lora_2024.csv"
    if not (azure.exists() and alibaba.exists()):
        pytest.skip(f"shared traces not found under {TRACES.resolve()}")
    trace = load_trace(azure, fmt="timestamps", time_column="TIMESTAMP")
    assert trace.requests == 19_366
    assert trace.notes == ()
    genai = load_trace(alibaba, fmt="timestamps", time_column="gmt_create",
                       service_time_column="exec_time_seconds")  # fmt: skip
    assert genai.requests == 26_823
    assert genai.notes == ()
    assert genai.service_s is not None
    assert float(genai.service_s.max()) == 567.0
