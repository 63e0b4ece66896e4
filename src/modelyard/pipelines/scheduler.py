"""The scheduler: a thread in ``modelyard server`` that runs due pipeline schedules.

Every ``poll_s`` (1 s) it reaps the fires that ended and starts the fire-now requests
the API queued (PENDING); every ``interval_s`` (``MODELYARD_SCHEDULE_INTERVAL_S``, 15 s
by default) it asks :func:`~._schedules.plan_fires` which schedules are due and starts
them. A fire is a subprocess::

    python -m modelyard pipeline run <file.py:attr> --executor <executor> --schedule <id>

in the pipeline file's folder, with ``MODELYARD_TRACKING_URI`` = this server, the
schedule's project, and a fresh token of the schedule's owner, scoped to that project
as editor, valid ``token_ttl_s`` and revoked when the subprocess ends. The server's own
``MODELYARD_*`` settings (store URI, artifact URI …) are not passed on. Output goes to
``<work_dir>/logs/<schedule id>-<fire id>.log``; the fire records its pid, exit code,
the pipeline run it created (the top-level run tagged ``modelyard.pipeline.schedule``)
and the log's tail.

Only files inside ``MODELYARD_PIPELINES_DIR`` run (checked at ``add`` and again at each
fire, symlinks resolved: :func:`~._schedule_fire.resolve_target`). One server per
metadata store runs schedules: at start it fails the fires an earlier process left
RUNNING (stopping their process if it is still there) and revokes their tokens. On stop
it terminates the subprocesses it started (their whole process group) and records them
FAILED.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from modelyard.auth import AuthService, IssuedToken, Principal
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.entities import Role
from modelyard.core.errors import ModelyardError
from modelyard.core.schedules import (
    ACTIVE_FIRE_STATES,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    FireRecord,
    ScheduleRecord,
)
from modelyard.pipelines.schedule_fire import (
    FireLaunch,
    FireProcess,
    fire_env,
    log_tail,
    pipeline_command,
    resolve_target,
    spawn_fire,
    stop_orphan,
    terminate,
)
from modelyard.pipelines.schedules import ScheduleTiming, plan_fires
from modelyard.store import MetadataStore

__all__ = ["SYSTEM_ACTOR", "Scheduler"]

logger = logging.getLogger("modelyard.pipelines")

SYSTEM_ACTOR = "system:scheduler"


class Scheduler:
    """Runs due schedules as subprocesses; see the module docstring.

    Args:
        store: the metadata store.
        pipelines_dir: ``MODELYARD_PIPELINES_DIR``.
        work_dir: home of the subprocesses (their ``MODELYARD_HOME``) and of the logs.
        tracking_uri: this server, as the subprocesses reach it.
        auth: issues and revokes the fires' tokens; None when authentication is off.
        clock: wall-clock time (the cron).
        interval_s: time between passes over the cron schedules.
        poll_s: time between checks for ended fires and fire-now requests.
        token_ttl_s: the most a fire's token lives (it is revoked when the fire ends).
        stop_grace_s: how long a fire gets after SIGTERM on stop before SIGKILL.
        command: the command line of a fire (tests run a stand-in pipeline CLI).
        base_env: the environment passed on (``os.environ`` when None), less MODELYARD_*.
    """

    def __init__(
        self,
        store: MetadataStore,
        *,
        pipelines_dir: Path,
        work_dir: Path,
        tracking_uri: str,
        auth: AuthService | None,
        clock: Clock | None = None,
        interval_s: float = 15.0,
        poll_s: float = 1.0,
        token_ttl_s: float = 86_400.0,
        stop_grace_s: float = 10.0,
        command: Callable[[FireLaunch], list[str]] = pipeline_command,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self._repo = store.schedules
        self.pipelines_dir = pipelines_dir
        self.work_dir = work_dir
        self._tracking_uri = tracking_uri
        self._auth = auth
        self._clock: Clock = clock or SystemClock()
        self.interval_s = interval_s
        self.poll_s = poll_s
        self._token_ttl_s = token_ttl_s
        self._stop_grace_s = stop_grace_s
        self._command = command
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._children: dict[int, FireProcess] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        """Recover what an earlier process left, then run the loop in a thread."""
        self.pipelines_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pipeline-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, terminate the fires it started and record them FAILED."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        children = list(self._children.values())
        alive = [c for c in children if c.process.poll() is None]
        terminate([c.process for c in alive], self._stop_grace_s)
        for child in children:
            try:
                self._reap(child, stopped=child in alive)
            except Exception:  # the server is stopping: record what can be, stop the rest
                logger.exception("fire %d not recorded as stopped", child.launch.fire.id)

    @property
    def running_fires(self) -> list[int]:
        """Ids of the fires whose subprocess this scheduler runs now."""
        return sorted(self._children)

    def _run(self) -> None:
        next_pass = self._clock.monotonic()
        while not self._stop.is_set():
            try:
                self.poll()
                if self._clock.monotonic() >= next_pass:
                    next_pass = self._clock.monotonic() + self.interval_s
                    self.tick()
            except Exception:
                logger.exception("scheduler pass failed")
            self._stop.wait(self.poll_s)

    # ---- passes ---------------------------------------------------------------------

    def recover(self) -> None:
        """Fail the fires an earlier server process left RUNNING; revoke their tokens."""
        for fire in self._repo.fires_in([RUNNING]):
            if fire.id in self._children:
                continue
            stopped = fire.pid is not None and stop_orphan(fire.pid, fire.schedule_id)
            note = "; its process was stopped" if stopped else ""
            self._repo.finish(
                fire.id,
                state=FAILED,
                now=self._clock.now(),
                message=f"interrupted: the server stopped while this fire ran{note}",
            )
            self._revoke(fire.token_id)

    def poll(self) -> None:
        """Reap the fires that ended; start the fire-now requests."""
        for child in list(self._children.values()):
            if child.process.poll() is not None:
                self._reap(child, stopped=False)
        for fire in self._repo.fires_in([PENDING]):
            if self._stop.is_set():
                return
            schedule = self._repo.by_id(fire.schedule_id)
            started = self._repo.start_pending(fire.id, now=self._clock.now())
            if started is not None and schedule is not None:
                self._launch(schedule, started)

    def tick(self) -> None:
        """Start every due schedule (one fire each, at most); note the runs fires made."""
        now = self._clock.now()
        active = {f.schedule_id for f in self._repo.fires_in(ACTIVE_FIRE_STATES)}
        for schedule in self._repo.list_schedules():
            if self._stop.is_set():
                return
            if not schedule.enabled:
                continue
            try:
                self._plan(schedule, schedule.id in active, now)
            except Exception:
                logger.exception("schedule %s/%s not planned", schedule.project, schedule.name)
        for child in self._children.values():
            fire = child.launch.fire
            run_id = self._pipeline_run(child.launch)
            if run_id is not None:
                self._repo.set_run(fire.id, run_id)

    def _plan(self, schedule: ScheduleRecord, running: bool, now: float) -> None:
        timing = ScheduleTiming(schedule.cron, schedule.enabled, schedule.armed_at, running)
        plan = plan_fires(timing, schedule.last_fire_at, now)
        if plan.fire_at_s is None:
            if plan.next_fire_s != schedule.next_fire_at:
                self._repo.set_next_fire(schedule.id, plan.next_fire_s)
            return
        fire = self._repo.claim_cron_fire(
            schedule.id,
            expect_last_fire_at=schedule.last_fire_at,
            expect_armed_at=schedule.armed_at,
            tick_at=plan.fire_at_s,
            missed=plan.missed,
            now=now,
            next_fire_at=plan.next_fire_s,
        )
        if fire is not None:
            self._launch(schedule, fire)

    # ---- one fire -------------------------------------------------------------------

    def _launch(self, schedule: ScheduleRecord, fire: FireRecord) -> None:
        token: IssuedToken | None = None
        try:
            target = resolve_target(self.pipelines_dir, schedule.target)
            token = self._issue(schedule, fire)
            launch = FireLaunch(schedule, fire, target)
            child = self._spawn(launch, token)
        except Exception as exc:
            message = exc.message if isinstance(exc, ModelyardError) else repr(exc)
            if not isinstance(exc, ModelyardError):
                logger.exception("fire %d of %s not started", fire.id, schedule.name)
            self._repo.finish(
                fire.id, state=FAILED, now=self._clock.now(), message=f"not started: {message}"
            )
            self._revoke(token.token.id if token else None)
            self._audit(fire, "schedule.fire", "error", 0, {"error": message})
            return
        self._children[fire.id] = child
        self._repo.set_process(fire.id, pid=child.process.pid, token_id=child.token_id)
        self._audit(fire, "schedule.fire", "ok", 0, {"pid": child.process.pid})

    def _issue(self, schedule: ScheduleRecord, fire: FireRecord) -> IssuedToken | None:
        """A token of the schedule's owner, editor in its project only (the owner must
        still hold that role)."""
        if self._auth is None:
            return None
        owner = self._store.auth.get_user(schedule.created_by)
        roles = {m.project: m.role for m in self._store.auth.list_memberships(user=owner.name)}
        principal = Principal(user=owner.name, is_admin=owner.is_admin, token_id=None, roles=roles)
        return self._auth.create_token(
            principal,
            name=f"schedule {schedule.name} fire {fire.id}",
            project=schedule.project,
            role=Role.EDITOR,
            expires_in_s=self._token_ttl_s,
        )

    def _spawn(self, launch: FireLaunch, token: IssuedToken | None) -> FireProcess:
        env = fire_env(
            self._base_env,
            tracking_uri=self._tracking_uri,
            project=launch.schedule.project,
            work_dir=self.work_dir,
            token=token.plaintext if token else None,
        )
        token_id = token.token.id if token else None
        return spawn_fire(self._command(launch), launch, env, self.work_dir, token_id)

    def _reap(self, child: FireProcess, *, stopped: bool) -> None:
        fire = child.launch.fire
        code = child.process.wait()
        child.log.close()
        self._children.pop(fire.id, None)
        ok = code == 0 and not stopped
        if stopped:
            summary = f"stopped: the server shut down (exit code {code})"
        elif code < 0:
            summary = f"killed by signal {-code}"
        else:
            summary = f"exit code {code}"
        message = f"{summary}; log {child.log_path}\n{log_tail(child.log_path)}".rstrip()
        try:
            self._repo.finish(
                fire.id,
                state=SUCCEEDED if ok else FAILED,
                now=self._clock.now(),
                message=message,
                exit_code=code,
                run_id=self._pipeline_run(child.launch),
            )
            self._audit(
                fire, "schedule.fire.end", "ok" if ok else "error", code, {"exit_code": code}
            )
        finally:
            self._revoke(child.token_id)

    def _pipeline_run(self, launch: FireLaunch) -> str | None:
        since = (launch.fire.started_at or launch.fire.fired_at) - 1.0
        return self._repo.find_pipeline_run(launch.schedule.project, launch.schedule.id, since)

    def _revoke(self, token_id: str | None) -> None:
        if token_id is None:
            return
        try:
            self._store.auth.revoke_token(token_id)
        except ModelyardError as exc:
            logger.warning("token %s of a fire not revoked: %s", token_id, exc)

    def _audit(
        self, fire: FireRecord, action: str, outcome: str, code: int, detail: dict[str, object]
    ) -> None:
        try:
            self._store.auth.append_audit(
                actor=SYSTEM_ACTOR,
                token_id=None,
                action=action,
                project=fire.project,
                target=f"schedule:{fire.schedule} fire:{fire.id} ({fire.trigger})",
                outcome=outcome,
                status_code=code,
                detail=json.dumps(detail, sort_keys=True),
            )
        except Exception:
            logger.exception("could not audit fire %d", fire.id)
