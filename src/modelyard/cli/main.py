"""The ``modelyard`` command.

Start-up time is part of every command's time (``modelyard data add`` of an unchanged
tree is mostly start-up), so the command modules import what is heavy (Rich, httpx,
pandas, the server) only inside the commands that use it.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

# httpx imports its own command-line client (click, Rich, Pygments: ~0.05 s, ~0.2 s
# without cached bytecode) whenever those happen to be installed; this process never
# runs it, and httpx falls back to a stub when the import fails.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import typer

from modelyard import __version__
from modelyard.cli._alerts_cmds import alerts_app
from modelyard.cli._artifact_cmds import artifact_app
from modelyard.cli._auth_cmds import audit_app, project_app, token_app, user_app
from modelyard.cli._autoscale_cmds import autoscale_app
from modelyard.cli._budget_cmds import budget_app, quota_app
from modelyard.cli._context import settings_of
from modelyard.cli._cost_cmds import cost_app
from modelyard.cli._cost_estimate_cmds import register_estimate
from modelyard.cli._data_cmds import data_app, lineage
from modelyard.cli._deploy_cmds import deploy_app
from modelyard.cli._models_cmds import models_app
from modelyard.cli._monitor_cmds import monitor_app
from modelyard.cli._output import JSON_OPTION, console, print_json, print_table, user_errors
from modelyard.cli._pipeline_cmds import pipeline_app
from modelyard.cli._quickstart_cmd import quickstart_cmd
from modelyard.cli._serve_cmd import gateway_cmd, serve_cmd
from modelyard.cli._tracking_cmds import experiments_app, runs_app
from modelyard.cli._tune_cmds import tune_app
from modelyard.core.entities import IssuedToken

app = typer.Typer(
    name="modelyard",
    help="modelyard: versioned data → tracked runs → registry → serving → autoscaling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the resolved settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(token_app, name="token")
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(artifact_app, name="artifact")
app.add_typer(autoscale_app, name="autoscale")
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(deploy_app, name="deploy")
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")
register_estimate(cost_app)
app.add_typer(cost_app, name="cost")
app.add_typer(budget_app, name="budget")
app.add_typer(quota_app, name="quota")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(tune_app, name="tune")
app.command("lineage")(lineage)
app.command("quickstart")(quickstart_cmd)
app.command("serve")(serve_cmd)
app.command("gateway")(gateway_cmd)


@app.command()
def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-remote.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 5005,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port.")] = 1,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    gateway_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Gateway port (default MODELYARD_GATEWAY_PORT, 5006)."),
    ] = None,
    gateway: Annotated[
        bool,
        typer.Option("--gateway/--no-gateway", help="Run deployments: gateway and controller."),
    ] = True,
) -> None:
    """Run the API server (SQLite and artifacts under MODELYARD_HOME by default), the
    deployment gateway and the controller that scales replicas."""
    from modelyard.server import ServerOptions, client_uri, serve  # heavy: only for this command

    settings = settings_of(ctx)
    if gateway_port is not None:
        settings = settings.replace(gateway_port=gateway_port)
    options = ServerOptions(host, port, workers, allow_remote, log_level, deployments=gateway)

    def announce(issued: IssuedToken | None) -> None:
        console.print(f"modelyard {__version__} serving on [bold]{client_uri(options)}[/]")
        console.print(f"  metadata store: {settings.masked()['MODELYARD_STORE_URI']}")
        console.print(f"  artifact store: {settings.masked()['MODELYARD_ARTIFACT_URI']}")
        if gateway:
            console.print(f"  deployment gateway: {settings.gateway_url}/<deployment>/")
        if not settings.auth_enabled:
            console.print("  authentication: [red]disabled[/] (MODELYARD_AUTH_ENABLED=false)")
        if issued is not None:
            console.print(
                f"  first start: admin token written to {settings.credentials_path} (mode 0600)"
            )

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    with user_errors():
        serve(settings, options, on_ready=announce)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Print the resolved settings, secrets masked."""
    values = settings_of(ctx).masked()
    if as_json:
        print_json(values)
    else:
        print_table(
            list(values.items()),
            [("setting", lambda kv: kv[0]), ("value", lambda kv: kv[1])],
            as_json=False,
        )


@app.command()
def version(as_json: bool = JSON_OPTION) -> None:
    """Print the modelyard version."""
    if as_json:
        print_json({"version": __version__})
    else:
        typer.echo(f"modelyard {__version__}")


def main() -> None:
    app()


__all__ = ["app", "main", "user_errors"]
