"""``python -m modelyard.quickstart`` is ``modelyard quickstart``."""

from __future__ import annotations

import typer

from modelyard.cli._quickstart_cmd import quickstart_cmd

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(quickstart_cmd)
app()
