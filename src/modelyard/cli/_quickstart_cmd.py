"""``modelyard quickstart``: the main job — the whole lifecycle, nothing to configure."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from modelyard.cli._context import settings_of
from modelyard.cli._output import console, err_console, fail, print_json

INTERRUPTED_EXIT = 130


def quickstart_cmd(
    ctx: typer.Context,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Leave the server and the deployment running (default: stop what it started).",
        ),
    ] = False,
    traffic_scale: Annotated[
        float,
        typer.Option(min=0.01, max=100.0, help="Multiply the traffic phases' durations."),
    ] = 1.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the result as JSON on stdout (the progress goes to stderr)."
        ),
    ] = False,
) -> None:
    """Walk the whole lifecycle in a minute or two: start (or use) a server, version a
    dataset, train three tracked candidates, register the best as quickstart-model
    @production, deploy it as quickstart-api, send real traffic while it scales up and back
    to zero, and show its lineage."""
    from modelyard.quickstart import QuickstartFailed, QuickstartOptions, run_quickstart
    from modelyard.quickstart.view import next_steps, summary_table

    settings = settings_of(ctx)
    options = QuickstartOptions(settings, keep_running=keep_running, traffic_scale=traffic_scale)
    # With --json the progress goes to stderr so that stdout is the JSON document alone.
    progress = (err_console if as_json else console).rich
    try:
        with _sigterm_interrupts():
            result = run_quickstart(options, console=progress)
    except QuickstartFailed as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted:[/] stopped what the quickstart started")
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if as_json:
        print_json(result.to_json())
        return
    console.print(summary_table(result))
    stopped = result.started_server and not keep_running
    console.print(next_steps(result, settings.project, server_stopped=stopped))


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C meanwhile, so ``kill`` also stops what was started."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
