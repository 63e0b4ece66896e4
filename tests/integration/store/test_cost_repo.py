"""The cost repository on SQLite and on a real PostgreSQL server: tags, traffic buckets,
replica usage, retention, and the facts of a period (replica overlap, runs with their
tags, indexed bytes resolved to their owners through every namespace in use)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.cost_facts import TrafficSample, UsageSample
from modelyard.core.deployments import Replica, RevisionDraft, RuntimeSettings, ScalingConfig
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import NotFound
from modelyard.core.models import version_namespace
from modelyard.core.tracking import RunStatus, run_artifact_namespace
from modelyard.store import MetadataStore, open_store
from modelyard.store._cost_repo import TRAFFIC_BUCKET_MS
from modelyard.store._data_repo import dataset_version_namespace
from modelyard.store.logged_model_repo import logged_model_namespace
from modelyard.testing.postgres import PostgresServer

_db_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_clock: FakeClock
) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'meta.db'}", fake_clock)
        opened.migrate()
        yield opened
        opened.close()
        return
    pg: PostgresServer = request.getfixturevalue("pg_server")
    name = f"cost_{next(_db_numbers)}"
    opened = open_store(pg.create_database(name), fake_clock)
    opened.migrate()
    yield opened
    opened.close()
    pg.drop_database(name)


def _now_ms(clock: FakeClock) -> int:
    return int(clock.now() * 1000)


def _deploy(store: MetadataStore, name: str = "churn-api", project: str = "fraud") -> int:
    draft = RevisionDraft("churn", 1, "models:/churn/1", RuntimeSettings(cpu=2.0, gpu=1.0))
    return store.deployments.create(project, name, ScalingConfig(), draft, "ann").id


def _replica(rid: str, dep_id: int, start_ms: int, stop_ms: int | None) -> Replica:
    return Replica(
        id=rid, deployment_id=dep_id, revision=1, pid=1, port=1,
        state="ready" if stop_ms is None else "stopped", mode="fork", standby=False, cpu=2.0,
        memory_mb=1536, started_at_ms=start_ms, ready_at_ms=start_ms, stopped_at_ms=stop_ms,
        exit_reason="", gpu=1.0,
    )  # fmt: skip


def test_tags_set_unset_and_list(store: MetadataStore) -> None:
    store.auth.create_project("fraud")
    dep = _deploy(store)
    assert store.cost.set_project_tags("fraud", {"team": "risk", "env": "prod"}, []) == {
        "env": "prod",
        "team": "risk",
    }
    assert store.cost.set_project_tags("fraud", {"team": "fraud"}, ["env", "absent"]) == {
        "team": "fraud"
    }
    assert store.cost.set_deployment_tags(dep, {"env": "staging"}, []) == {"env": "staging"}
    assert store.cost.project_tags() == {"fraud": {"team": "fraud"}}
    assert store.cost.deployment_tags([dep, 999]) == {dep: {"env": "staging"}}
    with pytest.raises(NotFound, match="project 'nope' does not exist"):
        store.cost.set_project_tags("nope", {"a": "b"}, [])


def test_traffic_buckets_add_up_samples_of_a_minute(store: MetadataStore) -> None:
    store.auth.create_project("fraud")
    dep = _deploy(store)
    minute = 1_700_000_040_000 // TRAFFIC_BUCKET_MS * TRAFFIC_BUCKET_MS
    store.cost.add_traffic([TrafficSample(dep, minute + 10_000, 10.0, 120, 2)])  # began at minute
    store.cost.add_traffic(
        [
            TrafficSample(dep, minute + 20_000, 10.0, 0, 3),  # idle: 30 replica-seconds
            TrafficSample(dep, minute + 70_000, 10.0, 5, 1),  # began in the next minute
        ]
    )
    facts = store.cost.facts(minute, minute + 120_000, minute + 120_000)
    rows = [
        (t.bucket_ms, t.requests, t.sampled_s, t.replica_s, t.idle_replica_s) for t in facts.traffic
    ]
    assert rows == [(minute, 120, 20.0, 50.0, 30.0), (minute + 60_000, 5, 10.0, 10.0, 0.0)]
    assert {(t.project, t.deployment) for t in facts.traffic} == {("fraud", "churn-api")}
    later = store.cost.facts(minute + 60_000, minute + 120_000, minute + 120_000)
    assert [t.requests for t in later.traffic] == [5]


def test_usage_samples_and_retention(store: MetadataStore) -> None:
    store.auth.create_project("fraud")
    dep = _deploy(store)
    store.cost.add_usage([UsageSample(dep, "r1", 1, t, 10.0, 0.5, 300.0) for t in (0, 10, 20)])
    store.cost.add_traffic([TrafficSample(dep, 120_000, 10.0, 1, 1)])  # bucket 60_000
    assert [u.time_ms for u in store.cost.usage([dep], 0, 20)] == [10, 20]
    assert store.cost.usage([], 0, 100) == []
    assert store.cost.prune(usage_before_ms=20, traffic_before_ms=0) == 2
    assert [u.time_ms for u in store.cost.usage([dep], -1, 100)] == [20]
    assert store.cost.prune(usage_before_ms=0, traffic_before_ms=120_000) == 1


def test_replica_and_run_facts_of_a_period(store: MetadataStore, fake_clock: FakeClock) -> None:
    store.auth.create_project("fraud")
    store.auth.create_project("other")
    dep = _deploy(store)
    t0 = _now_ms(fake_clock)
    for rid, start, stop in [
        ("before", t0 - 5000, t0 - 1000),  # ended before the period
        ("across", t0 - 5000, t0 + 5000),
        ("running", t0 + 1000, None),
        ("after", t0 + 20_000, None),  # starts after the period
    ]:
        store.deployments.add_replica(_replica(rid, dep, start, stop))
    exp = store.tracking.create_experiment("fraud", "e").id
    for run_id, status, start, end in [
        ("a" * 32, RunStatus.FINISHED, t0 - 1000, t0 + 1000),
        ("b" * 32, RunStatus.RUNNING, t0 + 2000, None),
        ("c" * 32, RunStatus.FAILED, t0 + 3000, None),  # failed without an end time
    ]:
        store.tracking.create_run(
            run_id=run_id, experiment_id=exp, name=f"run-{run_id[0]}", user="ann",
            start_time_ms=start, tags={"cost.cpu": "4", "team": "ml"}, parent_run_id=None,
        )  # fmt: skip
        store.tracking.update_run(run_id, status=status, end_time_ms=end)
    facts = store.cost.facts(t0, t0 + 10_000, t0 + 10_000)
    assert [r.replica_id for r in facts.replicas] == ["across", "running"]
    across = facts.replicas[0]
    assert (across.cpu, across.memory_mb, across.gpu, across.stopped_ms) == (
        2.0,
        1536,
        1.0,
        t0 + 5000,
    )
    assert (across.project, across.deployment, across.deployment_id) == ("fraud", "churn-api", dep)
    runs = {r.run_id: r for r in facts.runs}
    assert runs["a" * 32].end_ms == t0 + 1000
    assert runs["b" * 32].end_ms is None
    assert runs["c" * 32].end_ms == t0 + 3000  # billed nothing
    assert facts.runs_info["b" * 32].name == "run-b"
    assert facts.runs_info["b" * 32].tags == {"cost.cpu": "4", "team": "ml"}
    assert store.cost.facts(t0, t0 + 10_000, t0, projects=["other"]).replicas == ()
    only_dep = store.cost.facts(t0, t0 + 10_000, t0, deployment_ids=[dep])
    assert only_dep.runs == ()
    assert len(only_dep.replicas) == 2


def test_storage_resolves_every_namespace_to_its_owner(
    store: MetadataStore, fake_clock: FakeClock
) -> None:
    store.auth.create_project("fraud")
    dep = _deploy(store)
    exp = store.tracking.create_experiment("fraud", "e").id
    run = store.tracking.create_run(
        run_id="r" * 32, experiment_id=exp, name="train", user="ann",
        start_time_ms=0, tags={}, parent_run_id=None,
    )  # fmt: skip
    t0 = _now_ms(fake_clock)
    files = [ArtifactEntry("f", "a" * 64, 100)]
    store.artifacts.put(run_artifact_namespace(run.id), "model.pkl", "b" * 64, 1000)
    store.artifacts.put("project:fraud", "notes.txt", "c" * 64, 10)
    store.artifacts.put("scratch", "x", "d" * 64, 7)
    store.data.commit_version("fraud", "train", files, manifest_digest="e" * 64, user="ann")
    mv = store.registry.create_version(
        "fraud", "churn", source_run_id=run.id, source_uri="", flavor="sklearn",
        signature_json="", package_digest="f" * 64, files=files, user="ann",
    )  # fmt: skip
    lm = store.logged_models.create(
        experiment_id=exp, name="m", model_type="", source_run_id=run.id, user="ann",
        tags={}, params={},
    )  # fmt: skip
    store.artifacts.put(logged_model_namespace(lm.id), "MLmodel", "9" * 64, 5)
    store.monitoring.add_segment(dep, "replica", 1, "batch-1", t0, t0, 10, 300, "8" * 64)
    fake_clock.advance(10)
    facts = store.cost.facts(t0 - 1000, t0 + 20_000, t0 + 20_000)
    owners = {f.namespace: (f.project, f.deployment, f.run_id, f.bytes) for f in facts.storage}
    model_id = int(version_namespace(1, 1).split(":")[1])
    assert owners == {
        run_artifact_namespace(run.id): ("fraud", "", run.id, 1000),
        "project:fraud": ("fraud", "", "", 10),
        "scratch": ("", "", "", 7),
        dataset_version_namespace(1): ("fraud", "", "", 100),
        version_namespace(model_id, mv.version): ("fraud", "", "", 100),
        logged_model_namespace(lm.id): ("fraud", "", "", 5),
        f"predictions:{dep}": ("fraud", "churn-api", "", 300),
    }
    assert all(f.created_ms == t0 for f in facts.storage)
    assert facts.runs_info[run.id].name == "train"
    # Whole-period entries are summed per namespace; the owner filter keeps the project's.
    later = store.cost.facts(t0 + 60_000, t0 + 120_000, t0 + 120_000, projects=["fraud"])
    assert {f.namespace for f in later.storage} == set(owners) - {"scratch"}
    assert all(f.created_ms < t0 + 60_000 for f in later.storage)
    mine = store.cost.facts(t0, t0 + 1000, t0 + 1000, deployment_ids=[dep])
    assert [f.namespace for f in mine.storage] == [f"predictions:{dep}"]


def test_deleted_deployments_keep_their_id_history(store: MetadataStore) -> None:
    store.auth.create_project("fraud")
    first = _deploy(store)
    store.deployments.purge(first)
    second = _deploy(store)
    assert store.cost.deployment_ids("fraud", "churn-api") == [first, second]
    assert store.cost.deployment_ids("fraud", "nope") == []
