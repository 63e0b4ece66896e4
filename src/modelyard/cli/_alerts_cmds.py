"""``modelyard alerts add|ls|rm|history|silence|silences|unsilence|action-add|actions|
action-rm|metrics``."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of
from modelyard.cli._monitor_cmds import NameArg, _num, _window
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)

alerts_app = typer.Typer(
    help="Alert rules on deployments' metrics, notifications, silences and actions.",
    no_args_is_help=True,
)


# ---- alerts -------------------------------------------------------------------------


@alerts_app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    rule: Annotated[
        list[str],
        typer.Option("--rule", "-r", help='e.g. "p99_ms > 50 for 2m" (repeat for more).'),
    ],
    webhook: Annotated[
        str, typer.Option(help="POST signed JSON notifications here (http/https).")
    ] = "",
    action: Annotated[str, typer.Option(help="Also trigger this registered action.")] = "",
    hysteresis: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Share of the threshold to clear to resolve.")
    ] = 0.1,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add alert rules to a deployment (all or none)."""
    with user_errors(), client_of(ctx) as client:
        result = client.add_alerts(
            project_of(ctx, project),
            name,
            rule,
            webhook=webhook,
            action=action,
            hysteresis=hysteresis,
        )
    if as_json:
        print_json(result)
        return
    for r in result["rules"]:
        console.print(f"rule {r['id']}: {r['rule']}")
    if result.get("webhook_secret"):
        console.print(
            f"webhook secret (shown once; verify X-Modelyard-Signature with it): "
            f"{result['webhook_secret']}"
        )


@alerts_app.command("ls")
def ls(
    ctx: typer.Context, name: NameArg, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """A deployment's rules with their current state."""
    with user_errors(), client_of(ctx) as client:
        rules = client.list_alerts(project_of(ctx, project), name)
    print_table(
        rules,
        [
            ("id", lambda r: r["id"]),
            ("rule", lambda r: r["rule"]),
            ("state", lambda r: (r["state"] or {}).get("status", "inactive")),
            ("value", lambda r: _num((r["state"] or {}).get("last_value"))),
            ("webhook", lambda r: r["webhook"] or "-"),
            ("action", lambda r: r["action"] or "-"),
        ],
        as_json=as_json,
    )


@alerts_app.command("rm")
def rm(
    ctx: typer.Context,
    name: NameArg,
    rule_id: Annotated[int, typer.Argument(help="The rule's id (alerts ls).")],
    project: ProjectOpt = None,
) -> None:
    """Remove a rule."""
    with user_errors(), client_of(ctx) as client:
        client.delete_alert(project_of(ctx, project), name, rule_id)
    console.print(f"removed rule {rule_id}")


@alerts_app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    kind: Annotated[
        str | None,
        typer.Option(help="Only pending, firing, resolved, notify, notify_failed, silenced…"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 200,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """State changes, notification attempts and silences, oldest first."""
    with user_errors(), client_of(ctx) as client:
        events = client.alert_history(project_of(ctx, project), name, limit=limit, kind=kind)
    print_table(
        events,
        [
            ("time", lambda e: fmt_time(e["time_ms"] / 1000)),
            ("rule", lambda e: e["rule_id"] if e["rule_id"] is not None else "-"),
            ("kind", lambda e: e["kind"]),
            ("message", lambda e: e["message"]),
        ],
        as_json=as_json,
    )


@alerts_app.command("silence")
def silence(
    ctx: typer.Context,
    name: NameArg,
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")],
    rule: Annotated[str, typer.Option(help="Only this rule (default: every rule).")] = "",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mute a deployment's notifications for a while (state changes are still recorded)."""
    with user_errors(), client_of(ctx) as client:
        result = client.add_silence(
            project_of(ctx, project), name, duration, rule=rule, comment=comment
        )
    if as_json:
        print_json(result)
        return
    console.print(
        f"silence {result['id']}: {result['rule'] or 'every rule'} until "
        f"{fmt_time(result['ends_ms'] / 1000)} UTC"
    )


@alerts_app.command("silences")
def silences(
    ctx: typer.Context, name: NameArg, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """Silences in force."""
    with user_errors(), client_of(ctx) as client:
        found = client.list_silences(project_of(ctx, project), name)
    print_table(
        found,
        [
            ("id", lambda s: s["id"]),
            ("rule", lambda s: s["rule"] or "(every rule)"),
            ("until", lambda s: fmt_time(s["ends_ms"] / 1000)),
            ("by", lambda s: s["created_by"]),
            ("comment", lambda s: s["comment"]),
        ],
        as_json=as_json,
    )


@alerts_app.command("unsilence")
def unsilence(
    ctx: typer.Context,
    name: NameArg,
    silence_id: Annotated[int, typer.Argument(help="The silence's id.")],
    project: ProjectOpt = None,
) -> None:
    """End a silence now."""
    with user_errors(), client_of(ctx) as client:
        client.delete_silence(project_of(ctx, project), name, silence_id)
    console.print(f"silence {silence_id} ended")


@alerts_app.command("action-add")
def action_add(
    ctx: typer.Context,
    action_name: Annotated[str, typer.Argument(metavar="NAME", help="The action's name.")],
    command: Annotated[
        str | None,
        typer.Option(help='A command run with the alert JSON on stdin, e.g. "python retrain.py".'),
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="A URL to POST the alert to.")] = None,
    timeout: Annotated[str, typer.Option(help="Longest run, e.g. 5m.")] = "5m",
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an action rules can trigger (commands: platform admins only)."""
    import shlex

    with user_errors(), client_of(ctx) as client:
        argv = shlex.split(command) if command else []
        result = client.add_alert_action(
            project_of(ctx, project),
            action_name,
            command=argv,
            webhook=webhook or "",
            timeout_s=_window(timeout),
        )
    if as_json:
        print_json(result)
        return
    console.print(f"action {result['name']} ({result['kind']})")
    if result.get("webhook_secret"):
        console.print(f"webhook secret (shown once): {result['webhook_secret']}")


@alerts_app.command("actions")
def actions(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """Registered actions."""
    with user_errors(), client_of(ctx) as client:
        found = client.list_alert_actions(project_of(ctx, project))
    print_table(
        found,
        [
            ("name", lambda a: a["name"]),
            ("kind", lambda a: a["kind"]),
            ("what", lambda a: " ".join(a["command"]) if a["command"] else a["webhook"]),
            ("timeout", lambda a: f"{a['timeout_s']:g}s"),
        ],
        as_json=as_json,
    )


@alerts_app.command("action-rm")
def action_rm(
    ctx: typer.Context,
    action_name: Annotated[str, typer.Argument(metavar="NAME")],
    project: ProjectOpt = None,
) -> None:
    """Remove a registered action."""
    with user_errors(), client_of(ctx) as client:
        client.delete_alert_action(project_of(ctx, project), action_name)
    console.print(f"removed action {action_name}")


@alerts_app.command("metrics")
def metrics(as_json: bool = JSON_OPTION) -> None:
    """The metrics a rule can name."""
    from modelyard.monitor.rules import METRICS

    print_table(
        list(METRICS.values()),
        [
            ("metric", lambda m: m.syntax),
            ("unit", lambda m: m.unit),
            ("meaning", lambda m: m.description),
        ],
        as_json=as_json,
    )
