"""``modelyard cost report|rightsize|tag|tags``: what deployments, runs and stored data
cost, and ``rightsize --apply`` (vertical scaling). ``prices`` and ``estimate`` are added
by :mod:`._cost_estimate_cmds`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
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

cost_app = typer.Typer(
    help="What deployments, runs and stored data cost; estimate serving options on a trace.",
    no_args_is_help=True,
)

SinceOpt = Annotated[
    str,
    typer.Option(help="Start: a duration back from --until (7d, 12h, 30m) or a date/time."),
]
UntilOpt = Annotated[
    str | None, typer.Option(help="End: a date (2026-11-01), a time, a duration ago; default now.")
]
CSV_OPTION = typer.Option(False, "--csv", help="Print CSV instead of a table.")

_Column = tuple[str, Callable[[dict[str, Any]], object]]


def money(value: float | None) -> str:
    """Money with enough digits to see a cent and a small per-request price."""
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4f}"


def _hours(value: float) -> str:
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def _columns(currency: str) -> list[_Column]:
    return [
        ("cost", lambda g: money(g["cost"])),
        ("replica-h", lambda g: _hours(g["replica_hours"])),
        ("vCPU-h", lambda g: _hours(g["vcpu_hours"])),
        ("GB-h", lambda g: _hours(g["gb_hours"])),
        ("requests", lambda g: f"{g['requests']:,}"),
        (f"{currency}/1k req", lambda g: money(g["cost_per_1k"])),
    ]


# ---- report -----------------------------------------------------------------------------


@cost_app.command("report")
def report(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A deployment: its $/day, $ per 1k, idle share, sizing.")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Group by deployment (default), project, tag or run.")
    ] = None,
    tag_key: Annotated[
        str | None, typer.Option("--tag-key", help="With --by tag: group by this tag's values.")
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project you have a role in.")
    ] = False,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
    as_csv: bool = CSV_OPTION,
) -> None:
    """Cost per deployment, project, tag or run over a period; or one deployment's.

    With a deployment name (``modelyard cost report churn-api``): its $/day, $ per 1k
    predictions, idle share, replica-hours per revision and the right-sizing hint.
    ``--by project`` without ``--project`` covers every project you have a role in.
    """
    if as_json and as_csv:
        fail("give --json or --csv, not both", 2)
    if name is not None:
        if by is not None or tag_key is not None or all_projects:
            fail("--by, --tag-key and --all-projects are for the project report; "
                 "omit them with a deployment name", 2)  # fmt: skip
        _deployment_report(ctx, name, project, since, until, as_json, as_csv)
        return
    by = by or "deployment"
    everywhere = all_projects or (by == "project" and project is None)
    scope = None if everywhere else project_of(ctx, project)
    with user_errors(), client_of(ctx) as client:
        result = client.cost_report(scope, by=by, since=since, until=until, tag_key=tag_key)
    if as_json:
        print_json(result)
        return
    rows = [*result["groups"], {**result["total"], "key": "total"}]
    first: _Column = (by if by != "tag" else "tag", lambda g: g["key"])
    columns = [first, *_columns(result["currency"])]
    if by == "run":
        columns.insert(1, ("name", lambda g: g.get("name") or ""))
    if by in ("deployment", "run") and result["project"] is None:
        columns.insert(0, ("project", lambda g: g.get("project") or ""))
    if as_csv:
        _print_csv(rows, by, result["currency"])
        return
    where = result["project"] or ", ".join(result["projects"]) or "no project"
    title = (
        f"cost of {where} by {by}, {fmt_time(result['start_ms'] / 1000)} to "
        f"{fmt_time(result['end_ms'] / 1000)} UTC ({result['currency']})"
    )
    print_table(rows, columns, as_json=False, title=title)
    if result.get("overlapping"):
        console.print(
            "  a cost with several tags counts in each of their rows; the total counts it once"
        )
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {warning}")


_CSV_FIELDS = (
    "cost",
    "replica_hours",
    "vcpu_hours",
    "gb_hours",
    "gpu_hours",
    "run_hours",
    "stored_gb_months",
    "requests",
    "cost_per_1k",
    "idle_share",
)


def _print_csv(rows: Sequence[dict[str, Any]], by: str, currency: str) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([by, "name", "project", "currency", *_CSV_FIELDS])
    for row in rows:
        values = ["" if row.get(f) is None else row.get(f) for f in _CSV_FIELDS]
        writer.writerow(
            [row["key"], row.get("name", ""), row.get("project", ""), currency, *values]
        )


def _deployment_report(
    ctx: typer.Context,
    name: str,
    project: str | None,
    since: str,
    until: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    with user_errors(), client_of(ctx) as client:
        view = client.cost_deployment(project_of(ctx, project), name, since=since, until=until)
    if as_json:
        print_json(view)
        return
    currency = view["currency"]
    rows = [{**r, "key": str(r["revision"])} for r in view["revisions"]]
    rows.append({**view, "key": "total"})
    if as_csv:
        _print_csv(rows, "revision", currency)
        return
    kinds = view["cost_by_kind"]
    console.print(
        f"[bold]{name}[/] ({view['project']}{'' if view['live'] else ', deleted'})  "
        f"{fmt_time(view['start_ms'] / 1000)} to {fmt_time(view['end_ms'] / 1000)} UTC, "
        f"{view['days']:.3g} days"
    )
    console.print(
        f"  cost {money(view['cost'])} {currency} = {money(view['cost_per_day'])} {currency}/day"
        f"  (replicas {money(kinds['replica'])}, stored logs {money(kinds['storage'])})"
    )
    console.print(
        f"  requests {view['requests']:,}   {money(view['cost_per_1k'])} {currency} per 1k   "
        f"idle share {_share(view['idle_share'])}   replica-hours {_hours(view['replica_hours'])}"
    )
    print_table(rows, [("revision", lambda r: r["key"]), *_columns(currency)[:4]], as_json=False)
    _print_hints(name, view["rightsize"], currency)
    for warning in view.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {warning}")


def _print_hints(name: str, hints: Sequence[dict[str, Any]], currency: str) -> None:
    if not hints:
        return
    print_table(
        hints,
        [
            ("revision", lambda h: h["revision"]),
            ("requested", lambda h: f"{h['requested_cpu']:g} vCPU, {h['requested_memory_mb']} MB"),
            ("used (p95, peak)", _observed),
            ("suggested", _suggested),
            (f"saves {currency}/month", lambda h: money(h["saving_per_month"])),
            ("verdict", lambda h: h["verdict"]),
        ],
        as_json=False,
        title="right-sizing",
    )
    for h in hints:
        if h["verdict"] == "no data":
            console.print(f"  revision {h['revision']}: {h['reason']}")
        elif h["verdict"] != "right-sized":
            console.print(
                f"  revision {h['revision']}: {h['reason']}; apply with `modelyard cost "
                f"rightsize {name} --apply` (or `modelyard deploy update {name} --cpu "
                f"{h['suggested_cpu']:g} --memory-mb {h['suggested_memory_mb']}`)"
            )


def _observed(h: dict[str, Any]) -> str:
    if h["cpu_p95"] is None:
        return "-"
    return f"{h['cpu_p95']:.2f} vCPU, {h['memory_peak_mb']:.0f} MB"


def _suggested(h: dict[str, Any]) -> str:
    if h["suggested_cpu"] is None:
        return "-"
    return f"{h['suggested_cpu']:g} vCPU, {h['suggested_memory_mb']} MB"


@cost_app.command("rightsize")
def rightsize(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    window: Annotated[str, typer.Option(help="How far back to look at usage (7d, 24h).")] = "7d",
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Roll out the stable revision's suggested CPU/memory as a new revision.",
        ),
    ] = False,
    revision: Annotated[
        int | None,
        typer.Option(
            help="With --apply: the revision whose hint you read (must be the stable one).",
            min=1,
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Observed CPU and memory vs requested: a suggested size and the money it saves.

    Per serving revision: p95 CPU + 30 % and peak memory + 20 %, per month. With
    ``--apply`` (editors): the stable revision's suggestion becomes a new revision of
    the same model version, rolled out one replica at a time (GPU and other runtime
    settings kept); refused when the verdict is "no data" or "right-sized" or a rollout
    is in progress.
    """
    if revision is not None and not apply:
        fail("--revision only goes with --apply", 2)
    if apply:
        _apply(ctx, name, window, revision, project, as_json)
        return
    with user_errors(), client_of(ctx) as client:
        result = client.cost_rightsize(project_of(ctx, project), name, window=window)
    if as_json:
        print_json(result)
        return
    _print_hints(name, result["hints"], result["currency"])
    if not result["hints"]:
        console.print(f"{name}: no serving revision")


def _apply(
    ctx: typer.Context,
    name: str,
    window: str,
    revision: int | None,
    project: str | None,
    as_json: bool,
) -> None:
    with user_errors(), client_of(ctx) as client:
        done = client.apply_rightsize(
            project_of(ctx, project), name, window=window, revision=revision
        )
    if as_json:
        print_json(done)
        return
    before, after = done["before"], done["after"]
    console.print(
        f"{name}: revision {done['new_revision']} rolls out ({done['strategy']}) with the "
        f"suggested size of revision {done['revision']} ({done['verdict']})"
    )
    rows = [
        ("cpu", f"{before['cpu']:g} vCPU", f"{after['cpu']:g} vCPU"),
        ("memory", f"{before['memory_mb']} MB", f"{after['memory_mb']} MB"),
        ("gpu", f"{before['gpu']:g}", f"{after['gpu']:g} (unchanged)"),
    ]
    print_table(
        rows,
        [("resource", lambda r: r[0]), ("before", lambda r: r[1]), ("after", lambda r: r[2])],
        as_json=False,
    )
    console.print(
        f"  saves {money(done['saving_per_month'])} {done['currency']}/month at "
        f"{done['replicas_avg']:.2g} replicas on average; {done['reason']}"
    )
    console.print(f"  follow it: modelyard deploy events {name} --kind rollout")


# ---- tags -------------------------------------------------------------------------------


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["team=risk", "env=prod"]`` → a dict; exits with an error on a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"expected KEY=VALUE, got {pair!r}", 2)
        if key.strip() in out:
            fail(f"tag {key.strip()!r} is given twice", 2)
        out[key.strip()] = value
    return out


@cost_app.command("tag")
def tag(
    ctx: typer.Context,
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE tags to set.")] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="A tag key to remove (repeatable).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Tag this deployment, not the project.")
    ] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set or remove cost-allocation tags of a project or a deployment.

    ``modelyard cost tag team=risk`` (project admins), ``--deployment churn-api --unset
    team`` (editors).

    A deployment's costs carry its own tags and its project's (its own win); a run's, its
    run tags and its project's. ``cost report --by tag`` rolls up by them.
    """
    values = parse_pairs(pairs or [])
    with user_errors(), client_of(ctx) as client:
        result = client.set_cost_tags(
            project_of(ctx, project), values, unset or [], deployment=deployment
        )
    if as_json:
        print_json(result)
        return
    target = f"deployment {deployment}" if deployment else f"project {result['project']}"
    console.print(f"{target}: {_tag_text(result['tags'])}")


def _tag_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "(no tags)"


@cost_app.command("tags")
def tags(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """The cost-allocation tags of a project and of each of its deployments."""
    with user_errors(), client_of(ctx) as client:
        result = client.cost_tags(project_of(ctx, project))
    if as_json:
        print_json(result)
        return
    rows = [("project " + result["project"], result["tags"])]
    rows += [(f"deployment {n}", t) for n, t in sorted(result["deployments"].items())]
    print_table(rows, [("of", lambda r: r[0]), ("tags", lambda r: _tag_text(r[1]))], as_json=False)
