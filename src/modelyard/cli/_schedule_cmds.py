"""``modelyard pipeline schedule add|ls|show|rm|enable|disable|run|fires``: pipelines the
server runs on a cron (issue 18).

The pipeline file must lie in the server's ``MODELYARD_PIPELINES_DIR``; the server
checks the target, the cron and the executor, and refuses a bad one naming the field.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)

schedule_app = typer.Typer(
    help="Pipelines the server runs on a cron (UTC); files in MODELYARD_PIPELINES_DIR.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]
ACTIVE = ("PENDING", "RUNNING")


def _when(epoch_s: Any) -> str:
    return "-" if epoch_s is None else fmt_time(float(epoch_s))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 80 else line[:79] + "…"


@schedule_app.command("add")
def schedule_add(
    ctx: typer.Context,
    name: NameArg,
    target: Annotated[
        str, typer.Argument(help="path.py:attr, relative to the server's MODELYARD_PIPELINES_DIR.")
    ],
    cron: Annotated[
        str, typer.Option(help="Five fields (UTC), e.g. '*/5 * * * *', or @hourly, @daily …")
    ],
    executor: Annotated[str, typer.Option(help="local, ray or ray://host:port.")] = "local",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it disabled.")] = False,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a schedule (editors); it first fires at the first cron tick after now."""
    with user_errors(), client_of(ctx) as client:
        added = client.add_schedule(
            project_of(ctx, project), name, target, cron, executor=executor, enabled=not disabled
        )
    if as_json:
        print_json(added)
        return
    console.print(
        f"schedule {added['name']}: {added['target']} at '{added['cron']}' (UTC) on "
        f"{added['executor']}, next fire {_when(added['next_fire_at'])}"
    )


@schedule_app.command("ls")
def schedule_ls(
    ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """The project's schedules, with their last and next fire."""
    with user_errors(), client_of(ctx) as client:
        rows = client.list_schedules(project_of(ctx, project))
    print_table(
        rows,
        [
            ("name", lambda s: s["name"]),
            ("target", lambda s: s["target"]),
            ("cron (UTC)", lambda s: s["cron"]),
            ("executor", lambda s: s["executor"]),
            ("enabled", lambda s: "yes" if s["enabled"] else "no"),
            ("last fire", lambda s: _when(s["last_fire_at"])),
            ("last state", lambda s: s["last_state"] or "-"),
            ("next fire", lambda s: _when(s["next_fire_at"])),
        ],
        as_json=as_json,
    )


@schedule_app.command("show")
def schedule_show(
    ctx: typer.Context, name: NameArg, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """One schedule."""
    with user_errors(), client_of(ctx) as client:
        found = client.get_schedule(project_of(ctx, project), name)
    if as_json:
        print_json(found)
        return
    for key in ("name", "target", "cron", "executor", "enabled", "created_by", "last_state"):
        console.print(f"{key:<12} {found[key]}", highlight=False)
    for key in ("created_at", "last_fire_at", "next_fire_at"):
        console.print(f"{key:<12} {_when(found[key])}", highlight=False)


@schedule_app.command("rm")
def schedule_rm(ctx: typer.Context, name: NameArg, project: ProjectOpt = None) -> None:
    """Remove a schedule and its fire history (a running fire runs to its end)."""
    with user_errors(), client_of(ctx) as client:
        client.delete_schedule(project_of(ctx, project), name)
    console.print(f"removed schedule {name}")


def _set_enabled(ctx: typer.Context, name: str, project: str | None, enabled: bool) -> None:
    with user_errors(), client_of(ctx) as client:
        changed = client.update_schedule(project_of(ctx, project), name, enabled=enabled)
    state = "enabled" if changed["enabled"] else "disabled"
    console.print(f"schedule {name} {state}; next fire {_when(changed['next_fire_at'])}")


@schedule_app.command("enable")
def schedule_enable(ctx: typer.Context, name: NameArg, project: ProjectOpt = None) -> None:
    """Enable a schedule: it fires from the next tick on (what it skipped is not replayed)."""
    _set_enabled(ctx, name, project, True)


@schedule_app.command("disable")
def schedule_disable(ctx: typer.Context, name: NameArg, project: ProjectOpt = None) -> None:
    """Disable a schedule (a fire already running runs on; `run` still fires it)."""
    _set_enabled(ctx, name, project, False)


@schedule_app.command("run")
def schedule_run(
    ctx: typer.Context,
    name: NameArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the fire ends.")] = False,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="With --wait: give up after this many seconds.")
    ] = 3600.0,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fire a schedule now (refused while one of its fires is pending or running)."""
    project_name = project_of(ctx, project)
    with user_errors(), client_of(ctx) as client:
        fire = client.run_schedule(project_name, name)
        deadline = time.monotonic() + timeout
        while wait and fire["state"] in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.5)
            fire = next(
                (f for f in client.schedule_fires(project_name, name) if f["id"] == fire["id"]),
                fire,
            )
    if as_json:
        print_json(fire)
    else:
        run = f", pipeline run {fire['run_id']}" if fire.get("run_id") else ""
        console.print(f"fire {fire['id']} of {name}: {fire['state']}{run}")
        if fire["state"] == "FAILED" and fire["message"]:
            console.print(fire["message"], highlight=False, markup=False)
    if wait and fire["state"] in ACTIVE:
        fail(f"fire {fire['id']} of {name} still {fire['state'].lower()} after {timeout:g} s")
    if wait and fire["state"] == "FAILED":
        raise typer.Exit(1)


@schedule_app.command("fires")
def schedule_fires(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """A schedule's fires, newest first: when, why, how it ended, its pipeline run."""
    with user_errors(), client_of(ctx) as client:
        rows = client.schedule_fires(project_of(ctx, project), name, limit=limit)
    print_table(
        rows,
        [
            ("fire", lambda f: f["id"]),
            (
                "trigger",
                lambda f: f["trigger"] + (f" (+{f['missed']} missed)" if f["missed"] else ""),
            ),
            ("fired (UTC)", lambda f: _when(f["fired_at"])),
            ("state", lambda f: f["state"]),
            ("exit", lambda f: "-" if f["exit_code"] is None else f["exit_code"]),
            ("pipeline run", lambda f: f["run_id"] or "-"),
            ("why", lambda f: _first_line(f["message"]) if f["state"] == "FAILED" else ""),
        ],
        as_json=as_json,
    )
