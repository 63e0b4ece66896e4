"""``modelyard budget set|show|ls|rm|history`` and ``modelyard quota set|show|rm``
(issue 16)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.core.errors import InvalidInput

budget_app = typer.Typer(help="Monthly budgets per project, with alerts.", no_args_is_help=True)
quota_app = typer.Typer(help="Replica and CPU quotas per project.", no_args_is_help=True)


def parse_thresholds(text: str) -> list[float]:
    """``"50,80,100"`` (a trailing ``%`` allowed) as numbers.

    Raises:
        InvalidInput: naming the part that is not a number.
    """
    out = []
    for part in text.split(","):
        item = part.strip().removesuffix("%").strip()
        try:
            out.append(float(item))
        except ValueError:
            raise InvalidInput(
                f"--alert-at: {part.strip()!r} is not a number (give percentages like 50,80,100)"
            ) from None
    return out


def _money(value: Any, currency: str) -> str:
    return "-" if value is None else f"{float(value):,.2f} {currency}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}%"


def _when(ms: Any) -> str:
    return "-" if ms is None else fmt_time(ms / 1000)


# ---- budgets ------------------------------------------------------------------------


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    monthly_usd: Annotated[
        float | None,
        typer.Option("--monthly-usd", help="The amount per calendar month (UTC), in USD."),
    ] = None,
    monthly: Annotated[
        float | None,
        typer.Option(help="The amount per month in the price catalog's currency."),
    ] = None,
    alert_at: Annotated[
        str, typer.Option(help="Thresholds in percent of the budget, e.g. 50,80,100.")
    ] = "50,80,100",
    webhook: Annotated[
        str, typer.Option(help="POST signed JSON notifications here (http/https).")
    ] = "",
    action: Annotated[
        str, typer.Option(help="Also trigger this registered alert action (alerts action-add).")
    ] = "",
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create or replace a project's monthly budget (project admins)."""
    with user_errors():
        currency: str | None
        if monthly_usd is not None and monthly is None:
            amount, currency = monthly_usd, "USD"
        elif monthly is not None and monthly_usd is None:
            amount, currency = monthly, None
        else:
            raise InvalidInput("give the amount once: --monthly-usd AMOUNT or --monthly AMOUNT")
        thresholds = parse_thresholds(alert_at)
        with client_of(ctx) as client:
            result = client.set_budget(
                project_of(ctx, project),
                amount,
                currency=currency,
                alert_at=thresholds,
                webhook=webhook,
                action=action,
            )
    if as_json:
        print_json(result)
        return
    console.print(
        f"budget of {result['project']}: {_money(result['monthly'], result['currency'])} per "
        f"month, alerts at " + ", ".join(f"{t:g}%" for t in result["alert_at"])
    )
    if result.get("webhook_secret"):
        console.print(
            "webhook secret (shown once; verify X-Modelyard-Signature with it): "
            f"{result['webhook_secret']}"
        )


@budget_app.command("show")
def budget_show(
    ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """Spent this month, the forecast, % of the budget, thresholds and which fired."""
    with user_errors(), client_of(ctx) as client:
        view = client.get_budget(project_of(ctx, project))
    if as_json:
        print_json(view)
        return
    cur = view["currency"]
    console.print(
        f"[bold]{view['project']}[/]: budget {_money(view['monthly'], cur)} per month, "
        f"{view['month']} (UTC)"
    )
    console.print(f"  spent     {_money(view['spent'], cur)}  ({_pct(view['percent'])})")
    if view["forecast"] is None:
        console.print("  forecast  - (from the month's second day on)")
    else:
        console.print(
            f"  forecast  {_money(view['forecast'], cur)}  ({_pct(view['forecast_percent'])})"
        )
    print_table(
        view["thresholds"],
        [
            ("threshold", lambda t: f"{t['percent']:g}%"),
            ("amount", lambda t: _money(t["amount"], cur)),
            ("reached", lambda t: _when(t["actual_at_ms"])),
            ("forecast reached", lambda t: _when(t["forecast_at_ms"])),
        ],
        as_json=False,
    )
    console.print(
        f"  webhook {view['webhook'] or '-'}   action {view['action'] or '-'}   "
        f"next evaluation {_when(view['next_evaluation_ms'])} UTC"
    )


@budget_app.command("ls")
def budget_ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Budgets of every project you can see, as the server last evaluated them."""
    with user_errors(), client_of(ctx) as client:
        budgets = client.list_budgets()
    print_table(
        budgets,
        [
            ("project", lambda b: b["project"]),
            ("monthly", lambda b: _money(b["monthly"], b["currency"])),
            ("month", lambda b: (b["last"] or {}).get("month", "-")),
            ("spent", lambda b: _money((b["last"] or {}).get("spent"), b["currency"])),
            ("forecast", lambda b: _money((b["last"] or {}).get("forecast"), b["currency"])),
            ("%", lambda b: _pct((b["last"] or {}).get("percent"))),
            ("alert at", lambda b: ",".join(f"{t:g}" for t in b["alert_at"])),
            ("evaluated", lambda b: _when(b["evaluated_at_ms"])),
        ],
        as_json=as_json,
    )


@budget_app.command("rm")
def budget_rm(ctx: typer.Context, project: ProjectOpt = None) -> None:
    """Remove a project's budget (its history stays)."""
    with user_errors(), client_of(ctx) as client:
        name = project_of(ctx, project)
        client.delete_budget(name)
    console.print(f"removed the budget of {name}")


@budget_app.command("history")
def budget_history(
    ctx: typer.Context,
    kind: Annotated[
        str | None,
        typer.Option(help="Only set, crossed, rearmed, notify, notify_failed, error…"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 200,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Settings changes, threshold crossings and notification attempts, oldest first."""
    with user_errors(), client_of(ctx) as client:
        events = client.budget_history(project_of(ctx, project), limit=limit, kind=kind)
    print_table(
        events,
        [
            ("time", lambda e: _when(e["time_ms"])),
            ("kind", lambda e: e["kind"]),
            ("message", lambda e: e["message"]),
        ],
        as_json=as_json,
    )


# ---- quotas -------------------------------------------------------------------------


@quota_app.command("set")
def quota_set(
    ctx: typer.Context,
    max_replicas: Annotated[
        int | None, typer.Option(min=0, help="Active replicas over all deployments.")
    ] = None,
    max_cpu: Annotated[
        float | None, typer.Option(min=0, help="vCPU those replicas request.")
    ] = None,
    max_memory_gb: Annotated[
        float | None, typer.Option(min=0, help="GB of memory they request.")
    ] = None,
    max_gpu: Annotated[float | None, typer.Option(min=0, help="GPUs they request.")] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create or replace a project's quota (project admins).

    Enforced when deploying and scaling; lowering it stops no running replica.
    """
    with user_errors(), client_of(ctx) as client:
        view = client.set_quota(
            project_of(ctx, project),
            max_replicas=max_replicas,
            max_cpu=max_cpu,
            max_memory_gb=max_memory_gb,
            max_gpu=max_gpu,
        )
    if as_json:
        print_json(view)
        return
    _print_quota(view)


@quota_app.command("show")
def quota_show(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """A project's quota and what its active replicas request now."""
    with user_errors(), client_of(ctx) as client:
        view = client.get_quota(project_of(ctx, project))
    if as_json:
        print_json(view)
        return
    _print_quota(view)


@quota_app.command("rm")
def quota_rm(ctx: typer.Context, project: ProjectOpt = None) -> None:
    """Remove a project's quota."""
    with user_errors(), client_of(ctx) as client:
        name = project_of(ctx, project)
        client.delete_quota(name)
    console.print(f"removed the quota of {name}")


def _print_quota(view: dict[str, Any]) -> None:
    usage = view["usage"]
    rows = [
        ("replicas", view["max_replicas"], usage["replicas"]),
        ("cpu", view["max_cpu"], usage["cpu"]),
        ("memory_gb", view["max_memory_gb"], usage["memory_gb"]),
        ("gpu", view["max_gpu"], usage["gpu"]),
    ]

    def left(limit: Any, used: Any) -> str:
        return "-" if limit is None else f"{max(0.0, float(limit) - float(used)):g}"

    console.print(f"[bold]{view['project']}[/] quota (active replicas: starting, ready, draining)")
    print_table(
        rows,
        [
            ("resource", lambda r: r[0]),
            ("limit", lambda r: "none" if r[1] is None else f"{r[1]:g}"),
            ("in use", lambda r: f"{r[2]:g}"),
            ("left", lambda r: left(r[1], r[2])),
        ],
        as_json=False,
    )
