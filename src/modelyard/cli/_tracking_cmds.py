"""``modelyard experiments ls`` and ``modelyard runs ls|show|compare``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._context import ProjectOpt, client_of, settings_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.core.tracking import Run

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

experiments_app = typer.Typer(help="List experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="List, show and compare runs.", no_args_is_help=True)


@experiments_app.command("ls")
def experiments_ls(
    ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """List the experiments of a project."""
    name = project or settings_of(ctx).project
    with user_errors(), client_of(ctx) as client:
        experiments = client.list_experiments(name)
    print_table(
        experiments,
        [
            ("id", lambda e: e.id),
            ("name", lambda e: e.name),
            ("created", lambda e: fmt_time(e.creation_time_ms / 1000)),
            ("tags", lambda e: ", ".join(f"{k}={v}" for k, v in e.tags.items())),
        ],
        as_json=as_json,
    )


def _experiment_id(client: ModelyardClient, project: str, experiment: str) -> int:
    if experiment.isdigit():
        return int(experiment)
    found = client.find_experiment(project, experiment)
    if found is None:
        fail(f"experiment {experiment!r} does not exist in project {project!r}")
    return found.id


def _fmt_metric(value: float) -> str:
    return str(value) if math.isnan(value) or math.isinf(value) else f"{value:.6g}"


def _duration(run: Run) -> str:
    if run.end_time_ms is None:
        return "-"
    return f"{(run.end_time_ms - run.start_time_ms) / 1000:.1f}s"


@runs_app.command("ls")
def runs_ls(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="Name or id.")],
    filter_string: Annotated[
        str | None,
        typer.Option("--filter", "-f", help='MLflow filter, e.g. "metrics.auc > 0.9".'),
    ] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", help="e.g. 'metrics.auc DESC'; repeatable.")
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", min=1, max=50_000)] = 100,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List runs of an experiment, newest first unless --order-by says otherwise."""
    name = project or settings_of(ctx).project
    with user_errors(), client_of(ctx) as client:
        experiment_id = _experiment_id(client, name, experiment)
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            order_by=order_by or (),
            max_results=max_results,
        )
    metric_keys = sorted({k for r in page.items for k in r.metrics})[:6]
    print_table(
        page.items,
        [
            ("id", lambda r: r.id[:12]),
            ("name", lambda r: r.name),
            ("status", lambda r: r.status.value),
            ("started", lambda r: fmt_time(r.start_time_ms / 1000)),
            ("duration", _duration),
            *[
                (k, lambda r, k=k: _fmt_metric(r.metrics[k].value) if k in r.metrics else "")
                for k in metric_keys
            ],
        ],
        as_json=as_json,
    )


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a run: attributes, params, latest metrics, tags and artifacts."""
    with user_errors(), client_of(ctx) as client:
        run = client.get_run(run_id)
        artifacts = client.list_run_artifacts(run_id)
    if as_json:
        print_json({"run": run, "artifacts": artifacts})
        return
    console.print(f"[bold]{run.name}[/] ({run.id}) — {run.status.value}")
    console.print(
        f"experiment {run.experiment_id} in {run.project}, by {run.user}, "
        f"started {fmt_time(run.start_time_ms / 1000)}, duration {_duration(run)}"
        + (f", parent {run.parent_run_id}" if run.parent_run_id else "")
    )
    for title, items in (
        ("params", sorted(run.params.items())),
        ("metrics", sorted((k, _fmt_metric(m.value)) for k, m in run.metrics.items())),
        ("tags", sorted(run.tags.items())),
        ("artifacts", [(a.path, f"{a.size} bytes") for a in artifacts]),
    ):
        if items:
            print_table(items, [(title, lambda kv: kv[0]), ("", lambda kv: kv[1])], as_json=False)


@runs_app.command("compare")
def runs_compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Params and final metrics side by side; rows that differ are highlighted."""
    if len(run_ids) < 2:
        fail("give at least two run ids to compare", 2)
    with user_errors(), client_of(ctx) as client:
        runs = [client.get_run(r) for r in run_ids]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    rows: list[tuple[str, list[str]]] = [
        (f"params.{k}", [r.params.get(k, "") for r in runs]) for k in params
    ] + [
        (f"metrics.{k}", [_fmt_metric(r.metrics[k].value) if k in r.metrics else "" for r in runs])
        for k in metrics
    ]
    if as_json:
        print_json(
            {
                "runs": [r.id for r in runs],
                "rows": [{"key": k, "values": v, "differs": len(set(v)) > 1} for k, v in rows],
            }
        )
        return
    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column("")
    for r in runs:
        table.add_column(f"{r.name}\n{r.id[:8]}")
    for key, values in rows:
        style = "bold yellow" if len(set(values)) > 1 else None
        table.add_row(key, *values, style=style)
    console.print(table)
