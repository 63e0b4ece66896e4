"""The pipeline schedule repository on SQLite and on a real PostgreSQL server: schedules
unique per project, fires claimed at most once (overlap ``forbid``), fire-now requests,
the end of a fire, and the pipeline run a fire made found by its tag."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.core.schedules import PIPELINE_SCHEDULE_TAG, FireRecord, ScheduleRecord
from modelyard.store import MetadataStore, open_store
from modelyard.testing.postgres import PostgresServer

_db_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_clock: FakeClock
) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'meta.db'}", fake_clock)
        name = None
    else:
        pg: PostgresServer = request.getfixturevalue("pg_server")
        name = f"schedules_{next(_db_numbers)}"
        opened = open_store(pg.create_database(name), fake_clock)
    opened.migrate()
    opened.auth.create_project("fraud")
    opened.auth.create_project("other")
    yield opened
    opened.close()
    if name is not None:
        request.getfixturevalue("pg_server").drop_database(name)


def add(
    store: MetadataStore,
    name: str = "nightly",
    project: str = "fraud",
    now: float = 1000.0,
    enabled: bool = True,
) -> ScheduleRecord:
    return store.schedules.create(
        project,
        name,
        target="train.py:pipeline",
        cron="0 3 * * *",
        executor="local",
        enabled=enabled,
        created_by="ann",
        now=now,
        next_fire_at=now + 60,
    )


def test_create_get_list_update_delete(store: MetadataStore) -> None:
    created = add(store)
    assert (created.project, created.name, created.armed_at, created.last_state) == (
        "fraud",
        "nightly",
        1000.0,
        None,
    )
    add(store, "hourly")
    add(store, "nightly", project="other")
    assert store.schedules.get("fraud", "nightly") == created
    assert [s.name for s in store.schedules.list_schedules("fraud")] == ["hourly", "nightly"]
    assert [(s.project, s.name) for s in store.schedules.list_schedules()] == [
        ("fraud", "hourly"),
        ("fraud", "nightly"),
        ("other", "nightly"),
    ]
    changed = store.schedules.update(
        "fraud", "nightly", enabled=False, cron="*/5 * * * *", armed_at=2000.0, next_fire_at=None
    )
    assert (changed.enabled, changed.cron, changed.armed_at, changed.next_fire_at) == (
        False,
        "*/5 * * * *",
        2000.0,
        None,
    )
    assert store.schedules.by_id(created.id) == changed
    store.schedules.delete("fraud", "nightly")
    assert store.schedules.by_id(created.id) is None
    with pytest.raises(NotFound, match="schedule 'nightly' does not exist in project 'fraud'"):
        store.schedules.get("fraud", "nightly")


def test_names_are_unique_per_project_and_refusals_write_nothing(store: MetadataStore) -> None:
    add(store)
    with pytest.raises(AlreadyExists, match="name: project 'fraud' already has a schedule"):
        add(store)
    with pytest.raises(NotFound, match="project 'ghost' does not exist"):
        add(store, project="ghost")
    assert len(store.schedules.list_schedules()) == 1
    with pytest.raises(NotFound):
        store.schedules.update("fraud", "ghost", enabled=True)
    with pytest.raises(NotFound):
        store.schedules.delete("fraud", "ghost")
    with pytest.raises(NotFound):
        store.schedules.request_fire("fraud", "ghost", by="ann", now=1.0)


def test_a_fire_now_is_refused_while_one_is_pending_or_running(store: MetadataStore) -> None:
    add(store)
    fire = store.schedules.request_fire("fraud", "nightly", by="bob", now=1500.0)
    assert (fire.state, fire.trigger, fire.requested_by, fire.fired_at) == (
        "PENDING",
        "manual",
        "bob",
        1500.0,
    )
    with pytest.raises(Conflict, match="already pending"):
        store.schedules.request_fire("fraud", "nightly", by="bob", now=1501.0)
    started = store.schedules.start_pending(fire.id, now=1502.0)
    assert started is not None
    assert (started.state, started.started_at) == ("RUNNING", 1502.0)
    assert store.schedules.start_pending(fire.id, now=1503.0) is None  # not twice
    assert store.schedules.get("fraud", "nightly").last_fire_at == 1502.0
    with pytest.raises(Conflict, match="already running"):
        store.schedules.request_fire("fraud", "nightly", by="bob", now=1504.0)
    store.schedules.finish(fire.id, state="SUCCEEDED", now=1600.0, message="ok", exit_code=0)
    again = store.schedules.request_fire("fraud", "nightly", by="bob", now=1700.0)
    fires = store.schedules.fires("fraud", "nightly")
    assert [(f.id, f.state) for f in fires] == [(again.id, "PENDING"), (fire.id, "SUCCEEDED")]
    assert (fires[1].exit_code, fires[1].ended_at, fires[1].message) == (0, 1600.0, "ok")
    assert store.schedules.get("fraud", "nightly").last_state == "PENDING"


def claim(
    store: MetadataStore,
    schedule_id: str,
    *,
    last: float | None = None,
    armed: float = 1000.0,
    now: float = 10_805.0,
) -> FireRecord | None:
    """Claim the fire of the 10_800 tick (two older ticks folded into it)."""
    return store.schedules.claim_cron_fire(
        schedule_id,
        expect_last_fire_at=last,
        expect_armed_at=armed,
        tick_at=10_800.0,
        missed=2,
        now=now,
        next_fire_at=97_200.0,
    )


def test_a_cron_fire_is_claimed_once_and_only_as_planned(store: MetadataStore) -> None:
    schedule = add(store)
    assert claim(store, schedule.id, armed=999.0) is None  # re-armed since it was planned
    fire = claim(store, schedule.id)
    assert fire is not None
    got = (fire.trigger, fire.state, fire.tick_at, fire.missed, fire.started_at)
    assert got == ("cron", "RUNNING", 10_800.0, 2, 10_805.0)
    # the same plan again (a second scheduler, or a retried pass) claims nothing
    assert claim(store, schedule.id) is None
    after = store.schedules.get("fraud", "nightly")
    assert (after.last_fire_at, after.next_fire_at, after.last_state) == (
        10_805.0,
        97_200.0,
        "RUNNING",
    )
    store.schedules.finish(fire.id, state="FAILED", now=10_900.0, message="boom", exit_code=1)
    second = claim(store, schedule.id, last=10_805.0, now=97_201.0)
    assert second is not None
    store.schedules.finish(second.id, state="SUCCEEDED", now=97_300.0, message="", exit_code=0)
    store.schedules.update("fraud", "nightly", enabled=False)
    assert claim(store, schedule.id, last=97_201.0, now=99_000.0) is None  # disabled


def test_fires_by_state_process_and_removal(store: MetadataStore) -> None:
    one, two = add(store, "one"), add(store, "two", project="other")
    f1 = store.schedules.request_fire("fraud", "one", by="ann", now=1.0)
    f2 = store.schedules.request_fire("other", "two", by="ann", now=2.0)
    store.schedules.start_pending(f2.id, now=3.0)
    store.schedules.set_process(f2.id, pid=4242, token_id="tok1")
    assert [(f.id, f.project, f.schedule) for f in store.schedules.fires_in(["PENDING"])] == [
        (f1.id, "fraud", "one"),
    ]
    running = store.schedules.fires_in(["RUNNING"])
    assert [(f.id, f.pid, f.token_id, f.schedule_id) for f in running] == [
        (f2.id, 4242, "tok1", two.id),
    ]
    store.schedules.delete("fraud", "one")  # its fires go with it
    assert store.schedules.fires_in(["PENDING"]) == []
    store.schedules.finish(f1.id, state="FAILED", now=5.0, message="gone")  # a no-op now
    assert store.schedules.by_id(one.id) is None


def test_the_pipeline_run_of_a_fire_is_found_by_its_tag(store: MetadataStore) -> None:
    schedule = add(store)
    experiment = store.tracking.create_experiment("fraud", "pipelines")
    other = store.tracking.create_experiment("other", "pipelines")

    def run(
        run_id: str, start_s: float, value: str, exp: int = experiment.id, parent: str | None = None
    ) -> None:
        store.tracking.create_run(
            run_id=run_id,
            experiment_id=exp,
            name=run_id,
            user="ann",
            start_time_ms=int(start_s * 1000),
            tags={PIPELINE_SCHEDULE_TAG: value},
            parent_run_id=parent,
        )

    run("a" * 32, 100.0, schedule.id)  # an earlier fire's run
    run("b" * 32, 205.0, "someone-else")
    run("c" * 32, 206.0, schedule.id, exp=other.id)  # another project
    assert store.schedules.find_pipeline_run("fraud", schedule.id, 200.0) is None
    run("d" * 32, 210.0, schedule.id)
    run("e" * 32, 211.0, schedule.id, parent="d" * 32)  # a step run, not the pipeline's
    assert store.schedules.find_pipeline_run("fraud", schedule.id, 200.0) == "d" * 32
    assert store.schedules.find_pipeline_run("fraud", schedule.id, 50.0) == "a" * 32
