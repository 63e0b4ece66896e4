"""The serving process's prediction log: budget, sampling, files, counters (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.clock import FakeClock
from modelyard.serving.predlog import (
    COUNTERS_SUFFIX,
    PredictionLog,
    PredictionLogOptions,
    build_table,
)


def _log(tmp_path: Path, clock: FakeClock, **options: object) -> PredictionLog:
    opts = PredictionLogOptions(
        str(tmp_path / "spool"), deployment="d", revision=3, replica="r-1", **options
    )  # type: ignore[arg-type]
    return PredictionLog(opts, ["a", "b"], clock=clock.now)


def test_rows_land_in_one_parquet_file_per_flush(tmp_path: Path, fake_clock: FakeClock) -> None:
    log = _log(tmp_path, fake_clock)
    log.record("id-1", 200, 0.0025, np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0, 1]))
    fake_clock.advance(0.5)
    log.record("id-2", 200, 0.001, np.array([[5.0, 6.0]]), np.array([1]))
    path = log.flush()
    assert path is not None
    assert path.suffix == ".parquet"
    table = pq.read_table(path).to_pydict()
    assert table["_request_id"] == ["id-1", "id-1", "id-2"]
    assert table["_row"] == [0, 1, 0]
    assert table["_revision"] == [3, 3, 3]
    assert table["a"] == [1.0, 3.0, 5.0]
    assert table["b"] == [2.0, 4.0, 6.0]
    assert table["_prediction"] == [0, 1, 1]
    assert table["_latency_ms"][0] == pytest.approx(2.5)
    assert [t.timestamp() for t in table["_ts"]] == pytest.approx(
        [fake_clock.now() - 0.5, fake_clock.now() - 0.5, fake_clock.now()]
    )
    assert log.flush() is None  # nothing new: no empty file
    assert len(list((tmp_path / "spool").glob("*.parquet"))) == 1
    assert not list((tmp_path / "spool").glob("*.tmp"))
    counters = json.loads(next((tmp_path / "spool").glob("*" + COUNTERS_SUFFIX)).read_text())
    assert counters["logged"] == 2
    assert counters["dropped"] == 0


def test_the_byte_budget_drops_and_counts_within_a_second(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    log = _log(tmp_path, fake_clock, max_bytes_per_s=1024)
    row = np.zeros((1, 2))
    for i in range(40):  # 16 + 8 + 48 bytes each: 14 fit in 1 KiB
        log.record(f"q{i}", 200, 0.001, row, np.array([0]))
    assert (log.logged, log.dropped) == (14, 26)
    fake_clock.advance(1.0)  # a new second, a new budget
    log.record("next", 200, 0.001, row, np.array([0]))
    assert log.logged == 15


def test_sampling_keeps_the_drawn_share(tmp_path: Path, fake_clock: FakeClock) -> None:
    draws = iter([0.1, 0.9, 0.2, 0.7])
    opts = PredictionLogOptions(str(tmp_path), sample_rate=0.5)
    log = PredictionLog(opts, ["a", "b"], clock=fake_clock.now, draw=lambda: next(draws))
    for i in range(4):
        log.record(f"q{i}", 200, 0.001, np.zeros((1, 2)), np.array([0]))
    assert (log.logged, log.sampled_out) == (2, 2)


def test_multi_output_and_text_predictions(tmp_path: Path, fake_clock: FakeClock) -> None:
    batch = [
        (1.0, "a", 200, 0.001, np.array([[1.0, 2.0]]), np.array([[0.2, 0.8]])),
        (1.0, "b", 200, 0.001, np.array([[1.0, 2.0]]), np.array([[0.6, 0.4]])),
    ]
    table = build_table(batch, ("a", "b"), 1)
    assert table.column("_prediction").to_pylist() == [[0.2, 0.8], [0.6, 0.4]]
    texts = [(1.0, "a", 200, 0.001, np.array([[1.0, 2.0]]), np.array(["yes"]))]
    assert build_table(texts, ("a", "b"), 1).column("_prediction").to_pylist() == ["yes"]


def test_a_write_failure_is_counted_not_raised(tmp_path: Path, fake_clock: FakeClock) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = PredictionLog(
        PredictionLogOptions(str(blocker / "spool")), ["a", "b"], clock=fake_clock.now
    )
    log.record("q", 200, 0.001, np.zeros((1, 2)), np.array([0]))
    assert log.flush() is None
    assert log.write_errors == 1


def test_features_clashing_with_log_columns_are_not_logged(tmp_path: Path) -> None:
    log = PredictionLog(PredictionLogOptions(str(tmp_path)), ["_ts", "b"])
    log.record("q", 200, 0.001, np.zeros((1, 2)), np.array([0]))
    table = pq.read_table(log.flush())
    assert "b" not in table.schema.names
    assert table.column("_prediction").to_pylist() == [0]


@pytest.mark.parametrize(
    "bad",
    [{"sample_rate": 0}, {"sample_rate": 1.5}, {"max_bytes_per_s": 0}, {"flush_interval_s": 0}],
)
def test_bad_options_are_refused(tmp_path: Path, bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        PredictionLogOptions(str(tmp_path), **bad)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=20))
def test_every_row_of_every_request_is_written_once(sizes: list[int]) -> None:
    batch = [
        (float(i), f"r{i}", 200, 0.001, np.full((n, 2), float(i)), np.arange(n))
        for i, n in enumerate(sizes)
    ]
    table = build_table(batch, ("a", "b"), 7)
    assert table.num_rows == sum(sizes)
    ids = table.column("_request_id").to_pylist()
    rows = table.column("_row").to_pylist()
    assert sorted(zip(ids, rows, strict=True)) == sorted(
        (f"r{i}", j) for i, n in enumerate(sizes) for j in range(n)
    )
    assert table.column("a").to_pylist() == [
        float(i) for i, n in enumerate(sizes) for _ in range(n)
    ]


def test_the_writer_takes_entries_on_the_loop_that_appends_them(tmp_path: Path) -> None:
    """Entries recorded on an event loop while the writer flushes from its thread are all
    written: the writer swaps the list on the loop, never under an append."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    log = PredictionLog(PredictionLogOptions(str(tmp_path), flush_interval_s=0.01), ["a", "b"])
    try:
        asyncio.run_coroutine_threadsafe(_started(log), loop).result(5)

        async def burst() -> None:
            for i in range(2000):
                log.record(f"q{i}", 200, 0.001, np.zeros((1, 2)), np.array([0]))
                if i % 100 == 0:
                    await asyncio.sleep(0.001)

        asyncio.run_coroutine_threadsafe(burst(), loop).result(30)
        asyncio.run_coroutine_threadsafe(_stopped(log), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
    ids = [
        i for f in tmp_path.glob("*.parquet") for i in pq.read_table(f)["_request_id"].to_pylist()
    ]
    assert sorted(ids) == sorted(f"q{i}" for i in range(2000))


async def _started(log: PredictionLog) -> None:
    import asyncio

    log.start(asyncio.get_running_loop())


async def _stopped(log: PredictionLog) -> None:
    log.stop()
