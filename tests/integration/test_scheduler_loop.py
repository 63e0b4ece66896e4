"""The server's pipeline scheduler over a real store, real subprocesses and a fake clock:
fire-now and cron fires (once per window, ``forbid`` overlap, catch-up once), the
environment and scoped token a fire gets (revoked at its end), exit codes and log
tails, the pipeline run a fire made, refusals at fire time, stopping with the server,
and recovering what a dead server left.

A fire runs a stand-in for ``modelyard pipeline run`` (the real command line is passed
to it): it records what it was given, and holds while a file exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import Role
from modelyard.core.errors import Unauthenticated
from modelyard.core.schedules import PIPELINE_SCHEDULE_TAG, FireRecord
from modelyard.deploy.processes import pid_alive
from modelyard.pipelines.schedule_fire import FireLaunch, pipeline_command
from modelyard.pipelines.scheduler import Scheduler
from modelyard.testing.harness import Api

S = "/api/v1/projects/default/schedules"

STAND_IN = """
import json, os, pathlib, subprocess, sys, time
report, argv = pathlib.Path(sys.argv[1]), sys.argv[2:]
control = report.parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
env = {k: v for k, v in os.environ.items() if k.startswith("MODELYARD_")}
report.write_text(json.dumps({"argv": argv, "cwd": os.getcwd(), "env": env, "child": child.pid}))
print("step featurize: SUCCEEDED")
while (control / "hold").exists():
    time.sleep(0.02)
child.kill()
code = control / "exit_code"
sys.exit(int(code.read_text()) if code.exists() else 0)
"""


@pytest.fixture
def pipelines(api: Api) -> Path:
    folder: Path = api.ctx.settings.pipelines_dir
    (folder / "daily").mkdir(parents=True)
    (folder / "daily" / "train.py").write_text("pipeline = None\n")
    return folder


@pytest.fixture
def control(tmp_path: Path) -> Path:
    folder = tmp_path / "control"
    folder.mkdir()
    (folder / "stand_in.py").write_text(STAND_IN)
    return folder


def stand_in(control: Path) -> Callable[[FireLaunch], list[str]]:
    def command(launch: FireLaunch) -> list[str]:
        report = control / f"fire-{launch.fire.id}.json"
        return [
            sys.executable,
            str(control / "stand_in.py"),
            str(report),
            *pipeline_command(launch)[3:],
        ]

    return command


@pytest.fixture
def make_scheduler(
    api: Api, tmp_path: Path, control: Path, pipelines: Path
) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(*, auth: bool = True) -> Scheduler:
        scheduler = Scheduler(
            api.ctx.store,
            pipelines_dir=pipelines,
            work_dir=tmp_path / "work",
            tracking_uri="http://127.0.0.1:5999",
            auth=api.ctx.auth if auth else None,
            clock=api.ctx.clock,
            poll_s=0.05,
            stop_grace_s=5.0,
            command=stand_in(control),
            base_env={**os.environ, "MODELYARD_STORE_URI": "sqlite:////server/secret.db"},
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()


def editor(api: Api) -> dict[str, str]:
    return api.auth(api.token_for("ed", Role.EDITOR))


def add(api: Api, cron: str = "0 3 * * *") -> str:
    body = {"name": "nightly", "target": "daily/train.py:pipeline", "cron": cron}
    r = api.client.post(S, json=body, headers=editor(api))
    assert r.status_code == 201, r.text
    schedule_id: str = r.json()["id"]
    return schedule_id


def fires(api: Api) -> list[FireRecord]:
    return api.ctx.store.schedules.fires("default", "nightly")


def until_ended(scheduler: Scheduler, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while scheduler.running_fires:
        assert time.monotonic() < deadline, "the fire did not end"
        time.sleep(0.02)
        scheduler.poll()


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def report(control: Path, fire_id: int) -> dict[str, Any]:
    path = control / f"fire-{fire_id}.json"
    wait_for(path.exists)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_fire_now_runs_the_pipeline_with_a_scoped_token_revoked_at_its_end(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path, pipelines: Path
) -> None:
    schedule_id = add(api)
    scheduler = make_scheduler()
    assert api.client.post(f"{S}/nightly/run", headers=editor(api)).status_code == 202
    scheduler.poll()
    (running,) = fires(api)
    assert (running.state, running.trigger, running.requested_by) == ("RUNNING", "manual", "ed")
    assert running.pid is not None
    assert running.token_id is not None
    until_ended(scheduler)
    (fire,) = fires(api)
    assert (fire.state, fire.exit_code) == ("SUCCEEDED", 0)
    assert fire.message.startswith("exit code 0; log ")
    assert "step featurize: SUCCEEDED" in fire.message
    seen = report(control, fire.id)
    target = f"{pipelines / 'daily' / 'train.py'}:pipeline"
    assert seen["argv"] == [
        "pipeline",
        "run",
        target,
        "--executor",
        "local",
        "--schedule",
        schedule_id,
    ]
    assert seen["cwd"] == str(pipelines / "daily")
    env = seen["env"]
    assert env["MODELYARD_TRACKING_URI"] == "http://127.0.0.1:5999"
    assert env["MODELYARD_PROJECT"] == "default"
    assert "MODELYARD_STORE_URI" not in env  # the server's own settings are not passed on
    # the token was the owner's, editor in this project only, and is revoked now
    token = next(t for t in api.ctx.store.auth.list_tokens(user="ed") if t.id == fire.token_id)
    assert (token.project, token.role, token.user) == ("default", Role.EDITOR, "ed")
    assert token.expires_at is not None
    assert token.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        api.ctx.auth.authenticate(env["MODELYARD_TOKEN"])
    audit = api.ctx.store.auth.list_audit(actor="system:scheduler")
    assert sorted((a.action, a.outcome) for a in audit) == [
        ("schedule.fire", "ok"),
        ("schedule.fire.end", "ok"),
    ]
    assert api.client.get(f"{S}/nightly", headers=editor(api)).json()["last_state"] == "SUCCEEDED"


def test_a_failing_pipeline_is_failed_with_its_exit_code_and_log_tail(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path
) -> None:
    add(api)
    (control / "exit_code").write_text("3")
    scheduler = make_scheduler()
    api.client.post(f"{S}/nightly/run", headers=editor(api))
    scheduler.poll()
    until_ended(scheduler)
    (fire,) = fires(api)
    assert (fire.state, fire.exit_code) == ("FAILED", 3)
    assert fire.message.startswith("exit code 3")
    assert "step featurize" in fire.message


def test_cron_fires_once_per_window_and_waits_for_a_running_fire(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path, fake_clock: FakeClock
) -> None:
    created = fake_clock.now()
    add(api, cron="*/5 * * * *")
    first_tick = created - created % 300 + 300
    scheduler = make_scheduler()
    fake_clock.advance(first_tick - created - 1)
    scheduler.tick()
    assert fires(api) == []  # a second early
    (control / "hold").touch()
    fake_clock.advance(1)
    scheduler.tick()
    scheduler.tick()  # the same tick again: nothing more
    (fire,) = fires(api)
    assert (fire.trigger, fire.tick_at, fire.missed, fire.state) == (
        "cron",
        first_tick,
        0,
        "RUNNING",
    )
    # it runs past two more ticks: nothing starts meanwhile (overlap policy forbid)
    fake_clock.advance(11 * 60)
    scheduler.tick()
    assert len(fires(api)) == 1
    overdue = api.ctx.store.schedules.get("default", "nightly").next_fire_at
    assert overdue == first_tick + 300  # waiting for the running fire
    (control / "hold").unlink()
    until_ended(scheduler)
    scheduler.tick()
    scheduler.tick()
    newest, older = fires(api)
    assert older.state == "SUCCEEDED"
    # the two ticks it waited for fire once, for the newest of them
    assert (newest.trigger, newest.tick_at, newest.missed) == ("cron", first_tick + 600, 1)
    until_ended(scheduler)
    assert [f.state for f in fires(api)] == ["SUCCEEDED", "SUCCEEDED"]


def test_the_pipeline_run_a_fire_made_is_recorded(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path, fake_clock: FakeClock
) -> None:
    schedule_id = add(api)
    (control / "hold").touch()
    scheduler = make_scheduler()
    api.client.post(f"{S}/nightly/run", headers=editor(api))
    scheduler.poll()
    # what `modelyard pipeline run --schedule <id>` records: a parent run with the tag
    experiment = api.ctx.store.tracking.create_experiment("default", "pipelines")
    api.ctx.store.tracking.create_run(
        run_id="f" * 32,
        experiment_id=experiment.id,
        name="nightly-run",
        user="ed",
        start_time_ms=int(fake_clock.now() * 1000),
        tags={PIPELINE_SCHEDULE_TAG: schedule_id},
        parent_run_id=None,
    )
    scheduler.tick()
    assert fires(api)[0].run_id == "f" * 32  # known while it still runs
    (control / "hold").unlink()
    until_ended(scheduler)
    assert (fires(api)[0].state, fires(api)[0].run_id) == ("SUCCEEDED", "f" * 32)


def test_an_owner_without_the_editor_role_gets_no_token_and_nothing_runs(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path
) -> None:
    add(api)
    api.ctx.store.auth.set_membership("default", "ed", Role.VIEWER)
    scheduler = make_scheduler()
    api.ctx.store.schedules.request_fire("default", "nightly", by="admin", now=1.0)
    scheduler.poll()
    (fire,) = fires(api)
    assert fire.state == "FAILED"
    assert "not started: editor role in project 'default' required; ed has viewer" in fire.message
    assert scheduler.running_fires == []
    assert not list(control.glob("fire-*.json"))
    assert [t.name for t in api.ctx.store.auth.list_tokens(user="ed")] == ["ed.default.editor"]


def test_a_target_moved_out_of_the_folder_is_not_run(
    api: Api,
    make_scheduler: Callable[..., Scheduler],
    control: Path,
    pipelines: Path,
    tmp_path: Path,
) -> None:
    add(api)
    outside = tmp_path / "outside.py"
    outside.write_text("pipeline = None\n")
    (pipelines / "daily" / "train.py").unlink()
    os.symlink(outside, pipelines / "daily" / "train.py")
    scheduler = make_scheduler()
    api.client.post(f"{S}/nightly/run", headers=editor(api))
    scheduler.poll()
    (fire,) = fires(api)
    assert fire.state == "FAILED"
    assert "not started: target: " in fire.message
    assert "outside the pipelines folder" in fire.message
    assert not list(control.glob("fire-*.json"))


def test_without_authentication_a_fire_gets_no_token(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path
) -> None:
    add(api)
    scheduler = make_scheduler(auth=False)
    api.client.post(f"{S}/nightly/run", headers=editor(api))
    scheduler.poll()
    until_ended(scheduler)
    (fire,) = fires(api)
    assert (fire.state, fire.token_id) == ("SUCCEEDED", None)
    assert "MODELYARD_TOKEN" not in report(control, fire.id)["env"]


def test_the_loop_starts_queued_fires_and_stop_terminates_them(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path
) -> None:
    add(api)
    (control / "hold").touch()
    scheduler = make_scheduler()
    scheduler.start()
    api.client.post(f"{S}/nightly/run", headers=editor(api))
    wait_for(lambda: fires(api)[0].state == "RUNNING" and bool(scheduler.running_fires))
    fire = fires(api)[0]
    grandchild = report(control, fire.id)["child"]
    assert fire.pid is not None
    assert pid_alive(fire.pid)
    scheduler.stop()
    (stopped,) = fires(api)
    assert stopped.state == "FAILED"
    assert stopped.message.startswith("stopped: the server shut down")
    assert not pid_alive(fire.pid)
    wait_for(lambda: not pid_alive(grandchild), 10.0)  # its whole process group went
    assert scheduler.running_fires == []
    token = next(t for t in api.ctx.store.auth.list_tokens(user="ed") if t.id == stopped.token_id)
    assert token.revoked_at is not None


def test_recover_fails_what_a_dead_server_left_running(
    api: Api, make_scheduler: Callable[..., Scheduler], control: Path
) -> None:
    schedule_id = add(api)
    repo = api.ctx.store.schedules
    fire = repo.request_fire("default", "nightly", by="ed", now=1.0)
    repo.start_pending(fire.id, now=2.0)
    # its process survived the server (its own session); and an unrelated process
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "modelyard", schedule_id],
        start_new_session=True,
    )
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        caller = api.ctx.auth.authenticate(api.token_for("ed", Role.EDITOR))
        token = api.ctx.auth.create_token(caller, name="left", project="default")
        repo.set_process(fire.id, pid=orphan.pid, token_id=token.token.id)
        make_scheduler().recover()
        (failed,) = fires(api)
        assert failed.state == "FAILED"
        assert failed.message == (
            "interrupted: the server stopped while this fire ran; its process was stopped"
        )
        assert orphan.wait(10) == -signal.SIGTERM
        with pytest.raises(Unauthenticated, match="revoked"):
            api.ctx.auth.authenticate(token.plaintext)
        # a pid that is not that fire's is never signalled
        second = repo.request_fire("default", "nightly", by="ed", now=3.0)
        repo.start_pending(second.id, now=4.0)
        repo.set_process(second.id, pid=unrelated.pid, token_id=None)
        make_scheduler().recover()
        assert fires(api)[0].message == "interrupted: the server stopped while this fire ran"
        assert unrelated.poll() is None
    finally:
        for process in (orphan, unrelated):
            process.kill()
            process.wait()
