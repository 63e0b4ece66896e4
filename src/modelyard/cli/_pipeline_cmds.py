"""``modelyard pipeline run|runs|show``: run a pipeline file, list and inspect runs.

``modelyard.pipelines`` (and with it the executors and the tracking SDK) is imported
inside the commands: the CLI's start-up stays cheap for every other command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelyard.cli._context import client_of, settings_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.cli._schedule_cmds import schedule_app
from modelyard.core.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.core.tracking import Run
    from modelyard.pipelines import PipelineRun

pipeline_app = typer.Typer(
    help="Run pipelines (a DAG of cached steps) and inspect their runs.", no_args_is_help=True
)

PIPELINE_TAG = "modelyard.pipeline"


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "name=rf"]`` → ``{"lr": 0.1, "name": "rf"}`` (JSON values, else text).

    Raises:
        InvalidInput: an item without ``=`` or with an empty key, or a key given twice.
    """
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--param expects key=value, got {item!r}")
        if key in params:
            raise InvalidInput(f"--param {key!r} is given twice")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def _print_steps(run: PipelineRun) -> None:
    """The step table, then each failure or skip on a line of its own (never cut)."""
    print_table(
        list(run.steps.values()),
        [
            ("step", lambda r: r.name),
            ("after", lambda r: ", ".join(run.graph.get(r.name, [])) or "-"),
            ("state", lambda r: r.state.value),
            ("cache hit", lambda r: "yes" if r.cache_hit else "no"),
            ("attempts", lambda r: r.attempts),
            ("duration", lambda r: _duration(r.duration_s)),
        ],
        as_json=False,
        title=f"{run.name} ({run.run_id}) — {run.state.value}",
    )
    for result in run.steps.values():
        why = result.error or result.reason
        if why:
            console.print(
                f"  {result.name} {result.state.value}: {why}",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )


@pipeline_app.command("run")
def pipeline_run(
    target: Annotated[str, typer.Argument(help="The pipeline: path.py:attribute.")],
    executor: Annotated[
        str, typer.Option("--executor", "-x", help="local, ray or ray://host:port.")
    ] = "local",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-P", help="key=value (a JSON value or text); repeatable."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="A pipeline run id: rerun only its unfinished steps."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Local executor: worker processes.")
    ] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", help="Experiment of the runs.")
    ] = "pipelines",
    schedule: Annotated[str | None, typer.Option("--schedule", hidden=True)] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pipeline; prints each step's state. Exit code 1 if the pipeline failed."""
    from modelyard.pipelines import PipelineState, StepFailed
    from modelyard.pipelines.tags import PIPELINE_SCHEDULE, PIPELINE_TARGET
    from modelyard.pipelines.target import load_target

    with user_errors():
        params = parse_params(param)
        pipeline = load_target(target)
        tags = {PIPELINE_TARGET: target}
        if schedule is not None:
            tags[PIPELINE_SCHEDULE] = schedule
        run = pipeline.run(
            executor=executor,
            params=params,
            resume=resume,
            experiment=experiment,
            workers=workers,
            tags=tags,
        )
    if as_json:
        print_json(run.to_dict())
    else:
        _print_steps(run)
    if run.state is not PipelineState.SUCCEEDED:
        try:
            run.raise_for_state()
        except StepFailed as exc:
            fail(exc.message)
        fail(f"pipeline {run.pipeline} ended {run.state.value}")


@pipeline_app.command("runs")
def pipeline_runs(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this pipeline.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=50_000)] = 50,
    as_json: bool = JSON_OPTION,
) -> None:
    """List pipeline runs of the project, newest first."""
    project = settings_of(ctx).project
    condition = f"= '{name}'" if name is not None else "LIKE '%'"
    if name is not None and ("'" in name or "\\" in name):
        fail(f"invalid pipeline name {name!r}", 2)
    with user_errors(), client_of(ctx) as client:
        experiment_ids = [e.id for e in client.list_experiments(project)]
        runs: list[Run] = []
        if experiment_ids:
            runs = client.search_runs(
                experiment_ids,
                filter_string=f"tags.`{PIPELINE_TAG}` {condition}",
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            ).items

    def duration(r: Run) -> str:
        if r.end_time_ms is None:
            return "-"
        return _duration((r.end_time_ms - r.start_time_ms) / 1000)

    if as_json:
        print_json(
            [
                {
                    "run_id": r.id,
                    "name": r.name,
                    "pipeline": r.tags.get(PIPELINE_TAG),
                    "state": r.tags.get(f"{PIPELINE_TAG}.state"),
                    "start_time_ms": r.start_time_ms,
                    "end_time_ms": r.end_time_ms,
                    "schedule": r.tags.get(f"{PIPELINE_TAG}.schedule"),
                }
                for r in runs
            ]
        )
        return
    print_table(
        runs,
        [
            ("run id", lambda r: r.id),
            ("name", lambda r: r.name),
            ("state", lambda r: r.tags.get(f"{PIPELINE_TAG}.state", "?")),
            ("started", lambda r: fmt_time(r.start_time_ms / 1000)),
            ("duration", duration),
        ],
        as_json=False,
    )


@pipeline_app.command("show")
def pipeline_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run id.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a pipeline run: the step graph with states, cache hits, durations, failures."""
    from modelyard.pipelines import get_run

    with user_errors(), client_of(ctx) as client:
        run = get_run(run_id, client)
    if as_json:
        print_json(run.to_dict())
        return
    details = [f"pipeline {run.pipeline}", f"started {fmt_time(run.start_time_ms / 1000)}"]
    details.append(f"duration {_duration(run.duration_s)}")
    if run.tags.get("modelyard.pipeline.target"):
        details.append(f"target {run.tags['modelyard.pipeline.target']}")
    if run.tags.get("modelyard.pipeline.schedule"):
        details.append(f"schedule {run.tags['modelyard.pipeline.schedule']}")
    console.print(", ".join(details), highlight=False, soft_wrap=True, markup=False)
    if run.error:
        console.print(run.error, style="red", markup=False, highlight=False, soft_wrap=True)
    _print_steps(run)


pipeline_app.add_typer(schedule_app, name="schedule")
