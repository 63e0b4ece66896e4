"""Collecting spool files into segments: exactly once, even after a crash; windows;
retention that frees the blobs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from modelyard.artifacts import create_blob_store
from modelyard.core.clock import FakeClock
from modelyard.core.monitoring import MonitorConfig
from modelyard.monitor._logstore import BATCHES, LogStore
from modelyard.serving.predlog import PredictionLog, PredictionLogOptions, revision_spool
from modelyard.store import MetadataStore, open_store


@pytest.fixture
def store(tmp_path: Path, fake_clock: FakeClock) -> MetadataStore:
    s = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}", fake_clock)
    s.migrate()
    caller_project = "default"
    s.auth.create_project(caller_project, "")
    from modelyard.core.deployments import RevisionDraft, RuntimeSettings, ScalingConfig

    s.deployments.create(
        caller_project,
        "d",
        ScalingConfig(),
        RevisionDraft("m", 1, "models:/m/1", RuntimeSettings()),
        "admin",
    )
    return s


def _spool(home: Path, clock: FakeClock, n: int, start: int = 0) -> None:
    log = PredictionLog(
        PredictionLogOptions(str(revision_spool(home, 1, 1)), revision=1, replica="r"),
        ["x"],
        clock=clock.now,
    )
    for i in range(start, start + n):
        log.record(f"q{i}", 200, 0.001, np.array([[float(i)]]), np.array([i]))
        clock.advance(1)
    log.flush()


def _logs(tmp_path: Path, store: MetadataStore, clock: FakeClock) -> LogStore:
    blobs = create_blob_store(f"file://{tmp_path / 'blobs'}")
    return LogStore(tmp_path / "home", store.monitoring, blobs, clock.now)


def test_collect_makes_one_segment_and_empties_the_spool(
    tmp_path: Path, store: MetadataStore, fake_clock: FakeClock
) -> None:
    logs = _logs(tmp_path, store, fake_clock)
    _spool(tmp_path / "home", fake_clock, 10)
    _spool(tmp_path / "home", fake_clock, 5, start=10)
    assert logs.collect().segments == 0  # young and small: not due yet
    result = logs.collect(force=True)
    assert (result.segments, result.rows, result.files) == (1, 15, 2)
    (segment,) = store.monitoring.segments(1)
    assert segment.rows == 15
    assert segment.revision == 1
    window = logs.window(1, segment.first_ms, segment.first_ms + 4_000, ["x"])
    assert window.column("x").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert logs.collect(force=True).segments == 0


def test_a_batch_left_by_a_crash_is_finished_once(
    tmp_path: Path, store: MetadataStore, fake_clock: FakeClock
) -> None:
    logs = _logs(tmp_path, store, fake_clock)
    home = tmp_path / "home"
    _spool(home, fake_clock, 3)
    # A collector died after moving the files (step 1): the next one finishes the batch.
    batch = home / "predictions" / "spool" / "1" / BATCHES / "1-deadbeef"
    batch.mkdir(parents=True)
    for f in revision_spool(home, 1, 1).glob("*.parquet"):
        os.rename(f, batch / f.name)
    assert logs.collect().rows == 3
    # A collector died after recording the segment (step 3): the folder is only removed.
    batch.mkdir(parents=True)
    _spool(home, fake_clock, 2)
    for f in revision_spool(home, 1, 1).glob("*.parquet"):
        os.rename(f, batch / f.name)
    assert logs.collect().rows == 0
    assert not batch.exists()
    assert sum(s.rows for s in store.monitoring.segments(1)) == 3


def test_retention_drops_the_oldest_segments_and_their_blobs(
    tmp_path: Path, store: MetadataStore, fake_clock: FakeClock
) -> None:
    logs = _logs(tmp_path, store, fake_clock)
    for i in range(3):
        _spool(tmp_path / "home", fake_clock, 5, start=i * 5)
        logs.collect(force=True)
    segments = store.monitoring.segments(1)
    assert len(segments) == 3
    fake_clock.advance(2 * 86400)
    removed = logs.enforce_retention(1, MonitorConfig(log_retention_days=1))
    assert removed == 3
    assert store.monitoring.segments(1) == []
    blobs = create_blob_store(f"file://{tmp_path / 'blobs'}")
    assert not any(blobs.exists(s.digest) for s in segments)
    assert store.artifacts.list("predictions:1") == []
