"""Tracking conformance: every metadata store backend must pass these too.

Use together with ``MetadataStoreConformance`` (same ``metadata_store`` fixture).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelyard.core.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.core.search import parse_filter, parse_order_by
from modelyard.core.tracking import LifecycleStage, LogBatch, Metric, RunStatus
from modelyard.store import MetadataStore


def _run(store: MetadataStore, experiment_id: int, run_id: str, start: int = 0) -> str:
    store.tracking.create_run(
        run_id=run_id,
        experiment_id=experiment_id,
        name=f"name-{run_id}",
        user="alice",
        start_time_ms=start,
        tags={},
        parent_run_id=None,
    )
    return run_id


class TrackingStoreConformance:
    @pytest.fixture
    def experiment_id(self, metadata_store: MetadataStore) -> int:
        metadata_store.auth.create_project("default")
        return metadata_store.tracking.create_experiment("default", "churn", {"team": "g"}).id

    def test_experiments(self, metadata_store: MetadataStore, experiment_id: int) -> None:
        tracking = metadata_store.tracking
        got = tracking.get_experiment(experiment_id)
        assert (got.name, got.project, got.tags) == ("churn", "default", {"team": "g"})
        with pytest.raises(AlreadyExists):
            tracking.create_experiment("default", "churn")
        zero = tracking.create_experiment("default", "Default", experiment_id=0)
        assert zero.id == 0
        assert tracking.find_experiment("default", "Default") == zero
        later = tracking.create_experiment("default", "later")
        assert later.id > experiment_id
        tracking.update_experiment(later.id, lifecycle_stage=LifecycleStage.DELETED)
        names = [e.name for e in tracking.list_experiments("default")]
        assert names == ["Default", "churn"]
        with pytest.raises(NotFound):
            tracking.get_experiment(999_999)

    def test_sampled_history_and_run_stats(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        run_id = _run(metadata_store, experiment_id, "r-sampled", start=500)
        _run(metadata_store, experiment_id, "r-other", start=900)
        loss = tuple(Metric("loss", float(i), i, 1000 + i) for i in range(1000))
        acc = (Metric("acc", 0.5, 0, 1), Metric("acc", math.nan, 1, 2))
        tracking.log_batch(run_id, LogBatch(metrics=loss + acc))
        sampled = tracking.sampled_metric_history(run_id, ["loss", "acc", "none"], 100)
        steps = [m.step for m in sampled["loss"]]
        assert 100 <= len(steps) <= 101
        assert steps == sorted(steps)
        assert (steps[0], steps[-1]) == (0, 999)  # first and last always kept
        assert [m.step for m in sampled["acc"]] == [0, 1]
        assert math.isnan(sampled["acc"][1].value)
        assert sampled["none"] == []
        with pytest.raises(NotFound):
            tracking.sampled_metric_history("no-such-run", ["loss"], 100)
        assert tracking.run_stats("default") == {experiment_id: (2, 900)}
        tracking.update_run("r-other", lifecycle_stage=LifecycleStage.DELETED)
        assert tracking.run_stats("default") == {experiment_id: (1, 500)}

    def test_run_lifecycle_and_data(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        run_id = _run(metadata_store, experiment_id, "r1")
        assert tracking.log_batch(
            run_id,
            LogBatch(
                metrics=(
                    Metric("loss", 0.5, 0, 10),
                    Metric("loss", 0.25, 1, 11),
                    Metric("loss", math.nan, 2, 12),
                    Metric("gain", math.inf, 0, 10),
                    Metric("drop", -math.inf, 0, 10),
                ),
                params=(("lr", "0.1"),),
                tags=(("team", "growth"),),
            ),
        )
        run = tracking.get_run(run_id)
        assert run.params == {"lr": "0.1"}
        assert run.tags == {"team": "growth"}
        assert math.isnan(run.metrics["loss"].value)
        assert run.metrics["loss"].step == 2
        assert run.metrics["gain"].value == math.inf
        assert run.metrics["drop"].value == -math.inf
        history = tracking.metric_history(run_id, "loss")
        assert [m.step for m in history] == [0, 1, 2]
        assert history[1].value == 0.25
        assert math.isnan(history[2].value)
        done = tracking.update_run(run_id, status=RunStatus.FINISHED, end_time_ms=99)
        assert (done.status, done.end_time_ms) == (RunStatus.FINISHED, 99)
        assert tracking.project_of_run(run_id) == "default"

    def test_params_are_immutable_and_batches_atomic(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        run_id = _run(metadata_store, experiment_id, "r1")
        tracking.log_batch(run_id, LogBatch(params=(("lr", "0.1"),)))
        tracking.log_batch(run_id, LogBatch(params=(("lr", "0.1"),)))  # same value: fine
        with pytest.raises(InvalidInput, match="immutable"):
            tracking.log_batch(
                run_id,
                LogBatch(metrics=(Metric("m", 1.0, 0, 0),), params=(("lr", "0.2"),)),
            )
        assert tracking.count_metrics(run_id) == 0  # the failed batch left nothing behind
        assert tracking.get_run(run_id).params == {"lr": "0.1"}

    def test_batch_ids_apply_exactly_once(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        run_id = _run(metadata_store, experiment_id, "r1")
        batch = LogBatch(
            metrics=tuple(Metric("m", float(i), i, i) for i in range(50)), batch_id="b1"
        )
        assert tracking.log_batch(run_id, batch) is True
        assert tracking.log_batch(run_id, batch) is False
        assert tracking.count_metrics(run_id) == 50

    def test_concurrent_writers_lose_nothing(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        shared = _run(metadata_store, experiment_id, "shared")
        own = [_run(metadata_store, experiment_id, f"own{i}") for i in range(8)]
        barrier = threading.Barrier(16)

        def write(i: int) -> None:
            barrier.wait()
            target = shared if i % 2 else own[i // 2]
            for b in range(5):
                metrics = tuple(Metric("m", 1.0, s, s) for s in range(20))
                tracking.log_batch(target, LogBatch(metrics=metrics, batch_id=f"{i}-{b}"))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(write, range(16)))
        assert tracking.count_metrics(shared) == 8 * 5 * 20
        assert all(tracking.count_metrics(r) == 5 * 20 for r in own)

    def test_search_filters_order_and_pages(
        self, metadata_store: MetadataStore, experiment_id: int
    ) -> None:
        tracking = metadata_store.tracking
        for i in range(6):
            run_id = _run(metadata_store, experiment_id, f"r{i}", start=i)
            tracking.log_batch(
                run_id,
                LogBatch(
                    metrics=(Metric("auc", 0.8 + i / 100, 0, 0),),
                    params=(("depth", str(i % 3)),),
                    tags=(("team", "growth" if i < 3 else "risk"),),
                ),
            )
        tracking.update_run("r5", status=RunStatus.FINISHED)

        def ids(
            text: str | None, order: list[str] | None = None, offset: int = 0, limit: int = 100
        ) -> list[str]:
            runs = tracking.search_runs(
                [experiment_id],
                parse_filter(text),
                parse_order_by(order),
                offset=offset,
                limit=limit,
            )
            return [r.id for r in runs]

        assert ids(None) == ["r5", "r4", "r3", "r2", "r1", "r0"]  # newest first
        assert ids("metrics.auc > 0.825") == ["r5", "r4", "r3"]
        assert ids("metrics.auc >= 0.81 and params.depth = '1'") == ["r4", "r1"]
        assert ids("tags.team IN ('risk') and metrics.auc < 0.85") == ["r4", "r3"]
        assert ids("tags.team NOT IN ('risk')", ["metrics.auc ASC"]) == ["r0", "r1", "r2"]
        assert ids("attributes.status = 'FINISHED'") == ["r5"]
        assert ids("attributes.run_name LIKE 'name-r%' and params.depth != '0'", ["params.depth"])[
            :2
        ] == ["r4", "r1"]
        assert ids("tags.team ILIKE 'GROW%'") == ["r2", "r1", "r0"]
        assert ids(None, ["metrics.auc DESC"], offset=2, limit=2) == ["r3", "r2"]
        assert ids("metrics.missing > 0") == []
        assert ids("attributes.start_time >= 4") == ["r5", "r4"]
