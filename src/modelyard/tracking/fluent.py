"""The module-level SDK: ``import modelyard as my; with my.start_run(): my.log_metric(...)``.

Nothing happens at import. The first call reads the settings (``MODELYARD_TRACKING_URI``,
``MODELYARD_TOKEN`` or the saved local token, ``MODELYARD_PROJECT``) and opens a client.
Metrics, params and tags are buffered and shipped by a background thread (see
``modelyard.tracking._logger``); runs still open at interpreter exit are flushed and
ended as FINISHED, as MLflow does.
"""

from __future__ import annotations

import atexit
import dataclasses
import secrets
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelyard.client import ModelyardClient, connect
from modelyard.config import Settings
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.tracking import Experiment, LogBatch, Run, RunStatus
from modelyard.tracking._logger import BatchLogger, send_retried

if TYPE_CHECKING:
    import pandas as pd

EXIT_FLUSH_TIMEOUT_S = 120.0
DEFAULT_EXPERIMENT = "Default"


class ActiveRun:
    """A run this process is logging to. Use it as a context manager."""

    def __init__(
        self, session: _Session, run: Run, logger: BatchLogger, sender: ModelyardClient
    ) -> None:
        self._session = session
        self.run = run
        self.logger = logger
        self._sender = sender  # the logger thread's own connection

    def close_logger(self, timeout_s: float) -> None:
        try:
            self.logger.close(timeout_s)
        finally:
            self._sender.close()

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def experiment_id(self) -> int:
        return self.run.experiment_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self._session.end_run(self, status)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name} id={self.id} experiment={self.experiment_id}>"


class _Session:
    """Process-wide tracking state: one client, the experiment, the stack of open runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: ModelyardClient = connect(settings)
        self.experiment: Experiment | None = None
        self._lock = threading.RLock()
        self.stack: list[ActiveRun] = []
        atexit.register(self.close)

    def current_experiment(self) -> Experiment:
        with self._lock:
            if self.experiment is None:
                self.experiment = self.ensure_experiment(DEFAULT_EXPERIMENT)
            return self.experiment

    def ensure_experiment(self, name: str) -> Experiment:
        project = self.settings.project
        found = self.client.find_experiment(project, name)
        return found if found is not None else self.client.create_experiment(project, name)

    def active(self) -> ActiveRun | None:
        with self._lock:
            return self.stack[-1] if self.stack else None

    def start_run(
        self,
        name: str | None,
        tags: dict[str, str] | None,
        nested: bool,
        run_id: str | None = None,
        *,
        opened: Run | None = None,
    ) -> ActiveRun:
        """Start a run, reopen ``run_id``, or log to ``opened`` (a RUNNING run the caller
        has just read or created: no request is made for it)."""
        with self._lock:
            parent = self.stack[-1] if self.stack else None
            if parent is not None and not nested:
                raise InvalidInput(
                    f"run {parent.name} is already active: end it first, or pass nested=True"
                )
            if opened is not None:
                run = opened
            elif run_id is not None:
                run = self._reopen(run_id, tags)
            else:
                experiment_id = parent.experiment_id if parent else self.current_experiment().id
                run = self.client.create_run(
                    experiment_id,
                    name=name,
                    tags=tags,
                    parent_run_id=parent.id if parent else None,
                )
            sender = connect(self.settings)
            logger = BatchLogger(run.id, sender.log_batch)
            active = ActiveRun(self, run, logger, sender)
            self.stack.append(active)
            return active

    def _reopen(self, run_id: str, tags: dict[str, str] | None) -> Run:
        """An existing run, set RUNNING again (as MLflow's ``start_run(run_id=...)``)."""
        run = self.client.get_run(run_id)
        if run.status is not RunStatus.RUNNING:
            run = self.client.update_run(run_id, status=RunStatus.RUNNING)
        if tags:
            self.client.log_batch(run_id, LogBatch(tags=tuple(tags.items())))
        return run

    def end_run(
        self, active: ActiveRun, status: RunStatus, *, last: LogBatch | None = None
    ) -> None:
        """Flush and end ``active`` (and its open children); ``last`` is written with the
        end in one request, so those values and the end are stored together."""
        with self._lock:
            children = self.stack[self.stack.index(active) + 1 :] if active in self.stack else []
            for child in reversed(children):
                self.end_run(child, status)
            if active in self.stack:
                self.stack.remove(active)
        try:
            active.close_logger(EXIT_FLUSH_TIMEOUT_S)
        finally:
            if last is None:
                self.client.update_run(active.id, status=status)
            else:
                final = dataclasses.replace(last, batch_id=last.batch_id or secrets.token_hex(16))
                send_retried(
                    lambda: self.client.log_batch(active.id, final, end_status=status),
                    EXIT_FLUSH_TIMEOUT_S,
                )

    def close(self) -> None:
        """At interpreter exit: flush and finish every run still open."""
        try:
            while (active := self.active()) is not None:
                self.end_run(active, RunStatus.FINISHED)
        finally:
            self.client.close()


_session: _Session | None = None
_session_lock = threading.Lock()


def _get() -> _Session:
    global _session
    with _session_lock:
        if _session is None:
            _session = _Session(Settings())
        return _session


def _run_or_start() -> ActiveRun:
    session = _get()
    return session.active() or session.start_run(None, None, nested=False)


# --- the public functions --------------------------------------------------------------


def set_experiment(name: str) -> Experiment:
    """Use (creating if needed) the experiment ``name`` in ``MODELYARD_PROJECT``."""
    session = _get()
    experiment = session.ensure_experiment(name)
    session.experiment = experiment
    return experiment


def start_run(
    name: str | None = None,
    *,
    tags: dict[str, str] | None = None,
    nested: bool = False,
    run_id: str | None = None,
) -> ActiveRun:
    """Start a run in the current experiment; ``nested=True`` makes it a child run.

    ``run_id`` reopens an existing run instead (status RUNNING again), as in MLflow:
    a tuning trial or pipeline step logs into the child run its driver created.
    """
    return _get().start_run(name, tags, nested, run_id)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Flush and end the innermost active run."""
    session = _get()
    active = session.active()
    if active is not None:
        session.end_run(active, RunStatus(status))


def active_run() -> ActiveRun | None:
    return _get().active()


def log_metric(key: str, value: float, step: int = 0, timestamp_ms: int | None = None) -> None:
    """Buffer one metric value; returns at once (see ``flush``)."""
    session = _session  # the hot path of a training loop: no locks when a run is open
    logger = session.stack[-1].logger if session and session.stack else _run_or_start().logger
    logger.log_metric(
        key, value, step, time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    )


def log_metrics(metrics: dict[str, float], step: int = 0) -> None:
    ts = int(time.time() * 1000)
    logger = _run_or_start().logger
    for key, value in metrics.items():
        logger.log_metric(key, value, step, ts)


def log_param(key: str, value: Any) -> None:
    _run_or_start().logger.log_param(key, str(value))


def log_params(params: dict[str, Any]) -> None:
    logger = _run_or_start().logger
    for key, value in params.items():
        logger.log_param(key, str(value))


def set_tag(key: str, value: Any) -> None:
    _run_or_start().logger.set_tag(key, str(value))


def set_tags(tags: dict[str, Any]) -> None:
    logger = _run_or_start().logger
    for key, value in tags.items():
        logger.set_tag(key, str(value))


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactEntry:
    """Upload a file to the active run (synchronously; verified by sha256)."""
    path = Path(local_path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file")
    logical = f"{artifact_path.strip('/')}/{path.name}" if artifact_path else path.name
    active = _run_or_start()
    return _get().client.log_run_artifact(active.id, logical, path)


def flush(timeout_s: float | None = None) -> None:
    """Block until everything the active run logged so far is stored."""
    active = _get().active()
    if active is not None:
        active.logger.flush(timeout_s)


def get_run(run_id: str) -> Run:
    return _get().client.get_run(run_id)


def search_runs(
    experiment: str | int | list[str | int],
    filter: str | None = None,
    order_by: list[str] | None = None,
    max_results: int = 1000,
) -> pd.DataFrame:
    """Runs matching an MLflow-style filter, as a pandas DataFrame (one row per run).

    Columns: ``run_id``, ``experiment_id``, ``run_name``, ``status``, ``start_time``,
    ``end_time``, ``user``, ``parent_run_id``, then ``metrics.<key>``, ``params.<key>``
    and ``tags.<key>``.
    """
    import pandas as pd

    session = _get()
    names = experiment if isinstance(experiment, list) else [experiment]
    ids: list[int] = []
    for item in names:
        if isinstance(item, int):
            ids.append(item)
            continue
        found = session.client.find_experiment(session.settings.project, item)
        if found is None:
            raise NotFound(f"experiment {item!r} does not exist")
        ids.append(found.id)
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < max_results:
        page = session.client.search_runs(
            ids,
            filter_string=filter,
            order_by=order_by or (),
            max_results=min(max_results - len(runs), 50_000),
            page_token=token,
        )
        runs.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    return pd.DataFrame([_row(r) for r in runs])


def _row(run: Run) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.id,
        "experiment_id": run.experiment_id,
        "run_name": run.name,
        "status": run.status.value,
        "start_time": pd_time(run.start_time_ms),
        "end_time": pd_time(run.end_time_ms),
        "user": run.user,
        "parent_run_id": run.parent_run_id,
    }
    row.update({f"metrics.{k}": m.value for k, m in run.metrics.items()})
    row.update({f"params.{k}": v for k, v in run.params.items()})
    row.update({f"tags.{k}": v for k, v in run.tags.items()})
    return row


def pd_time(epoch_ms: int | None) -> Any:
    import pandas as pd

    return None if epoch_ms is None else pd.Timestamp(epoch_ms, unit="ms", tz="UTC")


def _reset_for_tests() -> None:
    """Forget the process-wide session (tests use several servers in one process)."""
    global _session
    with _session_lock:
        if _session is not None:
            _session.close()
            atexit.unregister(_session.close)
        _session = None
