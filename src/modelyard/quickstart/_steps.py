"""``run_quickstart``: the ten steps in order, each failure named, everything cleaned up.

A step that fails for an expected reason (a ``ModelyardError`` from the server, an HTTP
error, a file that cannot be written, a deployment that does not come up) raises
:class:`QuickstartFailed` naming the step and the reason. Whatever happens — success,
failure or Ctrl-C — what the quickstart started is stopped unless ``keep_running``: a
server it started gets SIGTERM (and stops its replicas and gateway itself); a deployment
it created on a server that was already running is deleted.
"""

from __future__ import annotations

import atexit
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelyard.client import ModelyardClient, resolve_connection
from modelyard.config import Settings
from modelyard.core.errors import ModelyardError, NotFound, Unauthenticated
from modelyard.data import render_lineage_tree
from modelyard.quickstart import _cost, _data, _deploy, _monitor, _train, _ui
from modelyard.quickstart._result import (
    CostSummary,
    LineageNode,
    ManifestsSummary,
    MonitorSummary,
    QuickstartFailed,
    QuickstartOptions,
    QuickstartResult,
    RunSummary,
    StepError,
    TrafficSummary,
    TuneSummary,
    UiPage,
)
from modelyard.quickstart._server import ServerHandle, find_or_start_server, stop_server
from modelyard.quickstart._traffic import request_bodies, traffic_plan
from modelyard.quickstart._watch import DeploymentWatch, drive_traffic
from modelyard.quickstart.view import dataset_table, runs_table, step_title, tune_table

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.data import AddResult


def run_quickstart(
    options: QuickstartOptions, *, console: Console | None = None
) -> QuickstartResult:
    """Walk the whole lifecycle: server → data → runs → registry → deployment → monitoring
    → cost → lineage → the web UI.

    Args:
        options: settings and switches (see :class:`QuickstartOptions`).
        console: where progress goes (default: stdout; nothing if ``options.quiet``).

    Returns:
        What was made, JSON-able with :meth:`QuickstartResult.to_json`.

    Raises:
        QuickstartFailed: a step failed; the message names it and says why.
        KeyboardInterrupt: interrupted; everything started was stopped first.
    """
    if options.traffic_scale <= 0:
        raise QuickstartFailed(5, f"--traffic-scale must be > 0, got {options.traffic_scale}")
    out = console or Console(quiet=options.quiet)
    return _Walk(options, out).run()


# One real row per request, as an online client sends them; the replicas batch them.
ROWS_PER_REQUEST = 1


class _Walk:
    def __init__(self, options: QuickstartOptions, console: Console) -> None:
        self.options = options
        self.settings = options.settings
        self.project = options.settings.project
        self.console = console
        self.server: ServerHandle | None = None
        self.client: ModelyardClient | None = None
        self.created_deployment = False

    def run(self) -> QuickstartResult:
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            stack.callback(self._cleanup)
            server, client = self._step1_server(stack)
            added, frame = self._step2_dataset(client)
            runs = self._step3_train(added.version.ref)
            best = _train.best_of(runs)
            version = self._step4_register(best)
            traffic, endpoint, created = self._step5_deploy(client, version, frame)
            monitoring = self._step6_monitor(client, endpoint, frame)
            cost = self._step7_cost(client)
            lineage = self._step8_lineage(client)
            pages = self._step9_ui(client, best.run_id)
            tuning = self._step10_tune(added.version.ref, server.uri)
            manifests = self._step11_render(client)
        return QuickstartResult(
            tracking_uri=server.uri,
            started_server=server.started,
            dataset_ref=added.version.ref,
            runs=tuple(runs),
            best_run_id=best.run_id,
            model_name=_deploy.MODEL_NAME,
            model_version=version,
            deployment_name=_deploy.DEPLOYMENT,
            endpoint=endpoint,
            rolled_out=not created,
            traffic=traffic,
            monitoring=monitoring,
            cost=cost,
            lineage=lineage,
            ui_pages=pages,
            tuning=tuning,
            manifests=manifests,
            wall_s=time.monotonic() - started,
        )

    # --- steps ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, step: int) -> Iterator[None]:
        self.console.rule(step_title(step), align="left", style="cyan")
        try:
            yield
        except StepError as exc:
            raise QuickstartFailed(step, str(exc)) from None
        except ModelyardError as exc:
            raise QuickstartFailed(step, exc.message) from None
        except httpx.HTTPError as exc:
            raise QuickstartFailed(step, f"HTTP error: {exc}") from None
        except OSError as exc:
            raise QuickstartFailed(step, str(exc)) from None

    def _step1_server(self, stack: contextlib.ExitStack) -> tuple[ServerHandle, ModelyardClient]:
        with self._step(1):
            with self.console.status(f"looking for a server at {self.settings.tracking_uri} …"):
                self.server = server = find_or_start_server(self.settings)
            if server.process is not None:
                self.console.print(
                    f"started a server at [bold]{server.uri}[/] (pid {server.process.pid}, "
                    f"SQLite and artifacts under {self.settings.home}; gateway on port "
                    f"{server.gateway_port}; log: {server.log_path})", highlight=False,
                )  # fmt: skip
            else:
                self.console.print(f"using the server at [bold]{server.uri}[/]")
            settings = self.settings.replace(tracking_uri=server.uri)
            conn = resolve_connection(settings)
            self.client = client = ModelyardClient(conn.tracking_uri, conn.token)
            _check_access(client, self.project, settings)
            stack.enter_context(sdk_session(settings))
            return server, client

    def _step2_dataset(self, client: ModelyardClient) -> tuple[AddResult, pd.DataFrame]:
        with self._step(2), tempfile.TemporaryDirectory(prefix="modelyard-quickstart-") as tmp:
            with self.console.status("writing breast_cancer.parquet, hashing, uploading …"):
                added, frame = _data.version_dataset(client, self.project, Path(tmp))
            self.console.print(dataset_table(added, _data.table_profile(added.version.profile)))
            return added, frame

    def _step3_train(self, dataset_ref: str) -> list[RunSummary]:
        with self._step(3):
            progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                console=self.console, transient=True)  # fmt: skip
            with progress:
                task = progress.add_task(f"training on {dataset_ref}", total=3)
                runs = _train.train_candidates(dataset_ref, lambda s: progress.advance(task))
            self.console.print(runs_table(runs, _train.best_of(runs).run_id))
            return runs

    def _step4_register(self, best: RunSummary) -> int:
        with self._step(4):
            version = _deploy.register_best(best.run_id)
            self.console.print(
                f"[bold green]{_deploy.MODEL_NAME} v{version.version}[/] ← run {best.run_id} "
                f"({best.name}); alias [bold]{_deploy.ALIAS}[/] → v{version.version}",
                highlight=False,
            )
            return version.version

    def _step5_deploy(
        self, client: ModelyardClient, version: int, frame: pd.DataFrame
    ) -> tuple[TrafficSummary, str, bool]:
        with self._step(5):
            max_replicas = min(_deploy.MAX_REPLICAS, self.settings.replica_limit)
            cursor = _deploy.last_event_id(client, self.project)
            with self.console.status("deploying (one replica proves the model loads) …"):
                started = _deploy.start_deployment(client, self.project, max_replicas)
                self.created_deployment = started.created
                _deploy.wait_serving(client, self.project, started.revision, version)
            how = "created" if started.created else f"rolled out as revision {started.revision}"
            self.console.print(f"{_deploy.DEPLOYMENT} {how}: [bold]{started.endpoint}[/] "
                               f"(0 to {max_replicas} replicas)", highlight=False)  # fmt: skip
            watch = DeploymentWatch(client, self.project, self.console, cursor, max_replicas)
            features = frame.drop(columns=[_data.TARGET])
            rows = features.to_numpy().tolist()
            bodies = request_bodies(list(features.columns), rows, ROWS_PER_REQUEST)
            plan = traffic_plan(self.options.traffic_scale)
            traffic = drive_traffic(watch, f"{started.endpoint}invocations", bodies, plan)
            return traffic, started.endpoint, started.created

    def _step6_monitor(
        self, client: ModelyardClient, endpoint: str, frame: pd.DataFrame
    ) -> MonitorSummary:
        with self._step(6):
            features = frame.drop(columns=[_data.TARGET])
            return _monitor.drift_demo(
                client,
                self.project,
                endpoint,
                list(features.columns),
                features.to_numpy().tolist(),
                self.console,
            )

    def _step7_cost(self, client: ModelyardClient) -> CostSummary:
        with self._step(7):
            return _cost.cost_report(client, self.project, self.console)

    def _step8_lineage(self, client: ModelyardClient) -> tuple[LineageNode, ...]:
        with self._step(8):
            graph = client.lineage(self.project, "deployment", _deploy.DEPLOYMENT, direction="up")
            self.console.print(render_lineage_tree(graph))
            return tuple(LineageNode(n["kind"], n["label"]) for n in graph["nodes"])

    def _step9_ui(self, client: ModelyardClient, run_id: str) -> tuple[UiPage, ...]:
        with self._step(9):
            return _ui.visit_ui(client, self.project, run_id, self.console)

    def _step10_tune(self, dataset_ref: str, uri: str) -> TuneSummary:
        from modelyard.quickstart import _tune

        with self._step(10):
            settings = self.settings.replace(tracking_uri=uri)
            with self.console.status(
                f"tuning a random forest: {_tune.TRIALS} trials on {_tune.WORKERS} worker "
                "processes, then the pipeline prepare → fit → evaluate twice …"
            ):
                summary = _tune.sweep_and_pipeline(dataset_ref, settings)
            self.console.print(tune_table(summary))
            return summary

    def _step11_render(self, client: ModelyardClient) -> ManifestsSummary:
        with self._step(11):
            folder = self.settings.home / "quickstart" / "kubernetes"
            files = client.render_deployment(
                self.project, _deploy.DEPLOYMENT, {"kind": "kubernetes", "namespace": "ml"}
            )
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.yaml"):
                old.unlink()
            kinds: list[str] = []
            for name, text in sorted(files.items()):
                (folder / name).write_text(text)
                kinds.append(str(yaml.safe_load(text)["kind"]))
            self.console.print(
                f"{len(files)} manifests ({', '.join(sorted(set(kinds)))}) in {folder}/ — "
                "review them, then `kubectl apply -f` on a cluster; "
                f"`modelyard deploy render {_deploy.DEPLOYMENT} -o DIR` does the same",
                highlight=False,
            )
            return ManifestsSummary(str(folder), tuple(sorted(files)), tuple(kinds))

    # --- cleanup --------------------------------------------------------------------

    def _cleanup(self) -> None:
        server, client = self.server, self.client
        try:
            if self.options.keep_running:
                self._say_what_keeps_running()
                return
            if self.created_deployment and client is not None and server and not server.started:
                with contextlib.suppress(ModelyardError, httpx.HTTPError):
                    client.delete_deployment(self.project, _deploy.DEPLOYMENT)
                    self.console.print(f"deleted the deployment {_deploy.DEPLOYMENT}")
            if server is not None and server.started:
                with self.console.status("stopping the server it started (and its replicas) …"):
                    stop_server(server)
                self.console.print(f"stopped the server at {server.uri}; data and runs are "
                                   f"kept under {self.settings.home}")  # fmt: skip
        finally:
            if client is not None:
                client.close()

    def _say_what_keeps_running(self) -> None:
        server = self.server
        if server is not None and server.process is not None:
            pid = server.process.pid
            self.console.print(f"the server keeps running at {server.uri} (pid {pid}; stop "
                               f"it with: kill {pid})")  # fmt: skip
        if self.created_deployment or (server is not None and server.started):
            self.console.print(f"the deployment {_deploy.DEPLOYMENT} stays up (it scales to "
                               "zero when idle)")  # fmt: skip


def _check_access(client: ModelyardClient, project: str, settings: Settings) -> None:
    try:
        client.whoami()
    except Unauthenticated as exc:
        raise StepError(
            f"the server at {client.tracking_uri} rejected the credentials ({exc.message}); "
            f"set MODELYARD_TOKEN, or MODELYARD_HOME to the home of the server that wrote "
            f"the token (now {settings.home})"
        ) from None
    try:
        client.get_project(project)
    except NotFound:
        raise StepError(
            f"project {project!r} does not exist on {client.tracking_uri} "
            f"(MODELYARD_PROJECT); create it with `modelyard project create {project}`"
        ) from None


@contextlib.contextmanager
def sdk_session(settings: Settings) -> Iterator[None]:
    """Point the module-level SDK (``import modelyard as my``) at ``settings`` meanwhile."""
    from modelyard.tracking import fluent

    with fluent._session_lock:
        previous = fluent._session
        fluent._session = fluent._Session(settings)
    try:
        yield
    finally:
        with fluent._session_lock:
            mine, fluent._session = fluent._session, previous
        if mine is not None:
            atexit.unregister(mine.close)
            mine.close()
