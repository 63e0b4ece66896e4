"""``modelyard tune ls|show``: tuning studies read back from their runs.

The study code (and Optuna, matplotlib) is imported inside the commands: listing other
commands' help must not pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from modelyard.cli._tracking_cmds import _experiment_id

if TYPE_CHECKING:
    from modelyard.tuning.study_report import ParamValue, StudyView, TrialView

tune_app = typer.Typer(help="Inspect hyperparameter tuning studies.", no_args_is_help=True)

NOT_ENOUGH = "not enough trials: importance needs 2+ complete trials whose params and values vary"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: ParamValue | float) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def _params(params: dict[str, ParamValue]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _trial_json(t: TrialView) -> dict[str, Any]:
    return {
        "number": t.number,
        "run_id": t.run_id,
        "state": t.state,
        "value": _finite(t.value),
        "params": t.params,
        "duration_s": t.duration_s,
        "node": t.node,
        "error": t.error,
    }


def _best_value(study: StudyView) -> float | None:
    best = study.best
    return _finite(best.value) if best is not None else None


def _summary(study: StudyView) -> dict[str, Any]:
    best = study.best
    return {
        "name": study.name,
        "run_id": study.run_id,
        "experiment": study.experiment,
        "experiment_id": study.experiment_id,
        "state": study.state,
        "metric": study.metric,
        "mode": study.mode,
        "sampler": study.sampler,
        "pruner": study.pruner,
        "executor": study.executor,
        "n_trials": study.n_trials,
        "finished": study.finished,
        "best_value": _best_value(study),
        "best_trial": best.number if best is not None else None,
        "start_time_ms": study.start_time_ms,
        "end_time_ms": study.end_time_ms,
        "stop_reason": study.stop_reason,
    }


def _trials_count(study: StudyView) -> str:
    return f"{study.finished}/{study.n_trials if study.n_trials is not None else '?'}"


@tune_app.command("ls")
def tune_ls(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only this experiment (name or id).")
    ] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the tuning studies of a project, newest first."""
    from modelyard.tuning.study_report import list_studies

    name = project or settings_of(ctx).project
    with user_errors(), client_of(ctx) as client:
        experiment_id = _experiment_id(client, name, experiment) if experiment else None
        studies = list_studies(client, name, experiment_id)
    if as_json:
        print_json([_summary(s) for s in studies])
        return
    print_table(
        studies,
        [
            ("name", lambda s: s.name),
            ("experiment", lambda s: s.experiment),
            ("state", lambda s: s.state),
            ("trials", _trials_count),
            ("best", lambda s: _fmt(_best_value(s))),
            ("metric", lambda s: f"{s.metric} ({s.mode})"),
            ("started", lambda s: fmt_time(s.start_time_ms / 1000)),
        ],
        as_json=False,
    )


def _check_plot_path(plot: Path) -> None:
    if plot.is_dir():
        fail(f"--plot: {str(plot)!r} is a folder; give a file name like study.png", 2)
    if not plot.parent.is_dir():
        fail(f"--plot: folder {str(plot.parent)!r} does not exist", 2)


@tune_app.command("show")
def tune_show(
    ctx: typer.Context,
    study: Annotated[str, typer.Argument(help="The study's name or its parent run id.")],
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a parallel-coordinates PNG of the trials here."),
    ] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a study: the best trial, every trial, param importance (fANOVA), a plot."""
    from modelyard.tuning.study_report import load_study, param_importances

    if plot is not None:
        _check_plot_path(plot)
    name = project or settings_of(ctx).project
    with user_errors():
        with client_of(ctx) as client:
            view = load_study(client, name, study)
        importance = param_importances(view)
        if plot is not None:
            from modelyard.cli._tune_plot import write_parallel_coordinates

            write_parallel_coordinates(view, plot)
    best = view.best
    if as_json:
        print_json(
            {
                "study": {**_summary(view), "space": view.space},
                "best_trial": _trial_json(best) if best is not None else None,
                "trials": [_trial_json(t) for t in view.trials],
                # A list, most important first: JSON objects are printed with sorted keys.
                "importance": None
                if importance is None
                else [{"param": k, "importance": v} for k, v in importance.items()],
                "importance_note": None if importance is not None else NOT_ENOUGH,
                "plot": str(plot) if plot is not None else None,
            }
        )
        return
    _print_study(view, importance)
    if plot is not None:
        console.print(f"parallel-coordinates plot written to {plot}", highlight=False)


def _print_study(view: StudyView, importance: dict[str, float] | None) -> None:
    console.print(f"[bold]study {view.name}[/] ({view.run_id}) — {view.state}", highlight=False)
    console.print(
        f"experiment {view.experiment}, metric {view.metric} ({view.mode}), "
        f"sampler {view.sampler}, pruner {view.pruner}, executor {view.executor}, "
        f"{_trials_count(view)} trials finished, started {fmt_time(view.start_time_ms / 1000)}",
        highlight=False,
    )
    if view.stop_reason:
        console.print(f"stopped early: {view.stop_reason}", highlight=False)
    best = view.best
    if best is None:
        console.print("best trial: none complete yet")
    else:
        console.print(
            f"[bold]best trial {best.number}[/] ({best.run_id}): "
            f"{view.metric} = {_fmt(best.value)}; {_params(best.params)}",
            highlight=False,
        )
    print_table(
        view.trials,
        [
            ("#", lambda t: t.number),
            ("state", lambda t: t.state),
            ("value", lambda t: _fmt(t.value)),
            ("params", lambda t: _params(t.params)),
            ("duration", lambda t: "-" if t.duration_s is None else f"{t.duration_s:.2f}s"),
            ("node", lambda t: t.node or "-"),
        ],
        as_json=False,
        title="trials",
    )
    if importance is None:
        console.print(f"param importance: {NOT_ENOUGH}", highlight=False)
    else:
        print_table(
            list(importance.items()),
            [("param", lambda kv: kv[0]), ("importance (fANOVA)", lambda kv: f"{kv[1]:.3f}")],
            as_json=False,
            title="param importance",
        )
